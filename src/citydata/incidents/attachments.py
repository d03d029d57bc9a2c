"""Incident attachments: files kept under ``<data_dir>/attachments/<incident id>/``, with a size limit
(``ioc_attachment_max_bytes``), an allow-list of content types and a check that the bytes look like the type
they claim (so a script is not served back as an image)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.alerts.service import audit_row, new_id
from citydata.auth import Principal
from citydata.clock import Clock
from citydata.errors import CityDataError, NotFound, ValidationFailed
from citydata.incidents.schema import incident_attachments, incidents
from citydata.incidents.workflow import IncidentService
from citydata.store import Store
from citydata.store.schema import audit_log


class TooLarge(CityDataError):
    status, code, title = 413, "too_large", "Payload too large"


class UnsupportedType(CityDataError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


# content type → magic prefixes (empty: text, checked as UTF-8)
ALLOWED_TYPES: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
    "audio/mpeg": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
    "audio/ogg": (b"OggS",),
    "video/mp4": (),   # ISO BMFF: "ftyp" at offset 4, checked below
    "text/plain": (),
}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    base = Path(name.replace("\\", "/")).name
    cleaned = SAFE_NAME.sub("_", base).strip("._") or "file"
    return cleaned[:120]


def check_content(content_type: str, data: bytes) -> None:
    if content_type not in ALLOWED_TYPES:
        raise UnsupportedType(f"attachments may be {', '.join(sorted(ALLOWED_TYPES))}")
    magics = ALLOWED_TYPES[content_type]
    if content_type == "text/plain":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise UnsupportedType("text/plain attachments must be UTF-8") from err
        return
    if content_type == "video/mp4":
        if data[4:8] != b"ftyp":
            raise UnsupportedType("the content is not an MP4 file")
        return
    if not any(data.startswith(m) for m in magics):
        raise UnsupportedType(f"the content is not {content_type}")


class Attachments:
    def __init__(self, store: Store, clock: Clock, incidents_service: IncidentService, root: Path,
                 max_bytes: int) -> None:
        self.store, self.clock, self.incidents = store, clock, incidents_service
        self.root, self.max_bytes = root, max_bytes

    async def add(self, incident_id: int, principal: Principal, filename: str, content_type: str,
                  data: bytes) -> dict[str, Any]:
        await self.incidents.get(incident_id, principal)
        content_type = content_type.split(";", 1)[0].strip().lower()
        if not data:
            raise ValidationFailed("empty attachment", code="empty")
        if len(data) > self.max_bytes:
            raise TooLarge(f"attachments are limited to {self.max_bytes} bytes")
        check_content(content_type, data)
        digest = hashlib.sha256(data).hexdigest()
        name = safe_filename(filename)
        relative = f"{incident_id}/{digest[:16]}-{name}"
        path = self.root / relative
        await asyncio.to_thread(self._write, path, data)
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> int:
            att_id = new_id(await conn.execute(incident_attachments.insert().values(
                incident_id=incident_id, filename=name, content_type=content_type, size=len(data), sha256=digest,
                path=relative, uploaded_at=now, uploaded_by=principal.subject[:100])))
            await conn.execute(incidents.update().where(incidents.c.id == incident_id).values(
                updated_at=now, version=incidents.c.version + 1))
            await conn.execute(audit_log.insert().values(**audit_row(
                principal, "incident.attach", "incident", str(incident_id), now,
                {"attachment_id": att_id, "filename": name, "size": len(data), "sha256": digest})))
            return att_id

        att_id = await self.store.write(op)
        return {"id": att_id, "incident_id": incident_id, "filename": name, "content_type": content_type,
                "size": len(data), "sha256": digest, "uploaded_at": now.isoformat(),
                "uploaded_by": principal.subject}

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)

    async def open(self, incident_id: int, attachment_id: int, principal: Principal) -> tuple[dict[str, Any], bytes]:
        await self.incidents.get(incident_id, principal)
        row = await self.store.fetch_one(select(incident_attachments).where(
            incident_attachments.c.id == attachment_id, incident_attachments.c.incident_id == incident_id))
        if row is None:
            raise NotFound(f"no attachment {attachment_id}", code="attachment_not_found")
        path = (self.root / row["path"]).resolve()
        if self.root.resolve() not in path.parents:
            raise NotFound(f"no attachment {attachment_id}", code="attachment_not_found")
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as err:
            raise NotFound(f"attachment {attachment_id} is missing on disk", code="attachment_missing") from err
        return dict(row), data
