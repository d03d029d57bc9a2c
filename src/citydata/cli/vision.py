"""``citydata vision enroll|match-face|read-plate|scan``: the CCTV analytics from the command line.

Output is JSON lines on stdout. ``enroll`` and ``match-face`` work on the configured database and are audited
(actor ``cli:<os user>``); ``read-plate`` only reads the image; ``scan`` plays a video through a registered
camera's pipeline (its masks, analytics and lines) and prints every event it produces (which are also stored
and published on the configured bus, so a platform sharing a NATS bus raises the alerts).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from citydata.cli.common import ConfigOpt, fail, run, settings_from

if TYPE_CHECKING:
    from citydata.config import Settings
    from citydata.vision.service import VisionService

app = typer.Typer(help="CCTV analytics: enrol faces, match faces, read plates, scan videos.", no_args_is_help=True)


def _line(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _principal() -> Any:
    from citydata.auth import Principal, Role

    return Principal(f"cli:{getpass.getuser()}", Role.ADMIN, "user")


@asynccontextmanager
async def _service(settings: Settings) -> AsyncIterator[VisionService]:
    """The vision service over the configured database and bus, without streams, HTTP or MQTT."""
    from citydata.auth import AuditLog
    from citydata.bus import create_bus
    from citydata.clock import SystemClock
    from citydata.config import parse_pii_keys, resolve_secrets
    from citydata.store import create_store
    from citydata.vision.service import VisionService

    settings = resolve_secrets(settings)
    clock = SystemClock()
    store = create_store(settings, clock)
    await store.start()
    bus = create_bus(settings)
    await bus.start()
    assert settings.secret_key is not None and settings.pii_keys is not None
    service = VisionService(settings=settings, store=store, bus=bus, clock=clock, audit=AuditLog(store, clock),
                            pii_keys=parse_pii_keys(settings.pii_keys.get_secret_value()),
                            secret_key=settings.secret_key.get_secret_value().encode(), workers=0)
    try:
        await service.start(streams=False)
        yield service
    finally:
        await service.stop()
        await bus.stop()
        await store.stop()


def _image(path: Path) -> Any:
    from citydata.vision.frames import read_image_file

    return read_image_file(str(path))


@app.command("enroll")
def enroll(images: list[Path] = typer.Argument(..., help="Photos of the subject, one face each."),
           watchlist: str = typer.Option(..., "--watchlist", "-w", help="Watchlist id."),
           subject: str = typer.Option(..., "--subject", "-s", help="Subject id (a case reference, not a name)."),
           reason: str = typer.Option("enrolled from the command line", help="Why (audited)."),
           days: int = typer.Option(90, min=1, max=3650, help="Days until the enrolment expires."),
           config: ConfigOpt = None) -> None:
    """Enrol a watchlist subject from photos (audited)."""
    async def go() -> dict[str, Any]:
        from citydata.vision.enrol import embeddings_for_enrolment

        async with _service(settings_from(config)) as service:
            embeddings = await embeddings_for_enrolment(service, [_image(p) for p in images])
            return await service.watchlists.enrol(_principal(), watchlist, subject, embeddings, reason=reason,
                                                  expires_at=service.clock.now() + timedelta(days=days))

    _line(run(go()))


@app.command("match-face")
def match_face(image: Path = typer.Argument(..., help="An image with faces."),
               watchlist: list[str] | None = typer.Option(None, "--watchlist", "-w", help="Only these watchlists."),
               config: ConfigOpt = None) -> None:
    """One line per face: its box, the matched subject (or null) and the cosine distance (audited)."""
    async def go() -> list[dict[str, Any]]:
        async with _service(settings_from(config)) as service:
            if not service.analyser.ready["faces"]:
                fail(f"face analytics unavailable: {service.analyser.reasons['faces']}")
            img = _image(image)
            faces = await service.analyser.faces(img)
            out = []
            for f in faces:
                m = service.watchlists.match(f.embedding, watchlist)
                score = m.score if m else service.watchlists.nearest(f.embedding, watchlist)
                out.append({"bbox": list(f.bbox), "subject": m.subject_id if m else None,
                            "score": None if score is None else round(score, 4)})
            await service.audit.record(_principal(), "vision.search", subject_type="watchlist",
                                       subject_id=",".join(watchlist)[:100] if watchlist else None,
                                       detail={"faces": len(out), "hits": sum(1 for o in out if o["subject"])})
            return out

    for row in run(go()):
        _line(row)


@app.command("read-plate")
def read_plate(image: Path = typer.Argument(..., help="An image with licence plates."),
               regions: str | None = typer.Option(
                   None, "--regions", help="Plate regions, comma-separated: th, my, sk, cz, uk, de, eu "
                                           "(default: the vision_plate_regions setting, th,my)."),
               config: ConfigOpt = None) -> None:
    """One line per plate: box, text, province and confidence."""
    from citydata.vision.workers import AnalyticUnavailable, configure_worker, work_plates

    settings = settings_from(config, **({"vision_plate_regions": regions} if regions is not None else {}))
    configure_worker(tuple(settings.vision_plate_regions))
    img = _image(image)
    try:
        reads = work_plates(img)
    except AnalyticUnavailable as err:
        fail(str(err))
    for r in reads:
        _line({"bbox": list(r.bbox), "text": r.text, "province": r.province, "confidence": round(r.confidence, 3)})


@app.command("scan")
def scan(video: Path = typer.Argument(..., help="A video file (mp4, avi, mkv ...)."),
         camera: str = typer.Option(..., "--camera", help="A registered camera id (its masks and analytics)."),
         fps: float = typer.Option(5.0, min=0.1, max=60, help="Frames analysed per second of video."),
         config: ConfigOpt = None) -> None:
    """Play a video through a camera's pipeline; one line per event (hits, violations) and a summary."""
    async def go() -> dict[str, Any]:
        import cv2
        import numpy as np

        from citydata.vision.frames import Frame

        async with _service(settings_from(config)) as service:
            cam = service.cameras.get(camera)
            pipe = service._pipeline(cam)

            async def show(delivery: Any) -> None:
                e = delivery.event
                _line({"kind": e.kind, "key": e.key, "time": e.time.isoformat(), "data": e.data})

            await service.bus.subscribe("vision.>", show)
            cap = cv2.VideoCapture(str(video))
            if not cap.isOpened():
                fail(f"cannot open video {video}")
            native = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or fps
            step = max(1, round(native / fps))
            start, n, analysed = service.clock.now(), 0, 0
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                if n % step == 0:
                    at = start + timedelta(seconds=n / native)
                    await pipe.analyse(Frame(camera, at, np.asarray(img, dtype=np.uint8), n, source="file"))
                    analysed += 1
                n += 1
            cap.release()
            await pipe.flush((start + timedelta(seconds=n / native + 60)).timestamp())
            import asyncio

            await asyncio.sleep(0.1)     # let the bus deliver the last events to ``show``
            return {"summary": {"frames": n, "analysed": analysed, **{k: v for k, v in service.counts.items() if v}}}

    _line(run(go()))
