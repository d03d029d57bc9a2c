"""The built web bundle on disk: where a requested file is, and whether the bundle is there at all.

``make web`` builds the two pages with Vite into ``static/`` and records the built files in
``static/bundle.json`` (``tools/check_bundle.py --write``). A checkout or an install can lack the bundle (a
source tree where ``static/`` was removed, a partial build, a build in progress): the pages then answer 503
``web_bundle_missing`` with how to build it, the problem is logged once, and ``/readyz`` shows it as a flag
(the API itself still works, as with a missing vision model)."""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citydata.errors import NotFound, Unavailable

log = logging.getLogger(__name__)

BUILT = Path(__file__).resolve().parent / "static"
RECORD = "bundle.json"
PAGES = {"ioc": "ioc/index.html", "app": "app/index.html"}
BUILD_HINT = "build it with `make web` (Node 20+ and npm; the build is written to src/citydata/web/static)"
MISSING_CODE = "web_bundle_missing"


@dataclass(frozen=True, slots=True)
class BundleState:
    """Whether the bundle is complete; ``missing`` names files relative to the bundle folder."""

    ok: bool
    missing: tuple[str, ...]
    detail: str


class WebBundle:
    """The bundle folder. ``locate`` finds a file to serve; ``state`` checks the bundle is complete (the two
    pages, and every file ``bundle.json`` lists when it is there)."""

    def __init__(self, root: Path = BUILT) -> None:
        self.root = root.resolve()
        self._logged: str | None = None   # the last problem logged: each distinct problem is logged once

    def required(self) -> list[str]:
        files = list(PAGES.values())
        try:
            listed = json.loads((self.root / RECORD).read_text(encoding="utf-8")).get("files", [])
        except (OSError, ValueError, AttributeError):
            listed = []
        files += [f for f in listed if isinstance(f, str) and f not in files]
        return files

    def state(self) -> BundleState:
        missing = tuple(f for f in self.required() if not (self.root / f).is_file())
        if all(page in missing for page in PAGES.values()):
            detail = f"the web bundle is not built; {BUILD_HINT}"
        elif missing:
            detail = (f"the web bundle is incomplete: {len(missing)} built file(s) missing ({', '.join(missing[:3])}"
                      f"{' ...' if len(missing) > 3 else ''}); {BUILD_HINT}")
        else:
            detail = "ready"
        found = BundleState(ok=not missing, missing=missing, detail=detail)
        self._log(found)
        return found

    def readiness(self) -> dict[str, Any]:
        """For ``/readyz``: a missing bundle disables the two pages only, so it is a flag, never "not ready"."""
        found = self.state()
        return {"ok": True, "bundle": found.ok, "detail": found.detail}

    def locate(self, relative: str) -> tuple[Path, os.stat_result]:
        """The file to serve and its ``stat`` (so the response does not stat it again later). A file outside
        the bundle or absent from a complete bundle: 404; any file while the bundle is incomplete: 503."""
        path = (self.root / relative).resolve()
        if path.is_relative_to(self.root):
            try:
                st = path.stat()
            except OSError:
                pass
            else:
                if stat.S_ISREG(st.st_mode):
                    return path, st
        found = self.state()
        if not found.ok:
            raise Unavailable(found.detail, code=MISSING_CODE, missing=list(found.missing[:10]))
        raise NotFound(f"no file {relative}", code="not_found")

    def _log(self, found: BundleState) -> None:
        if found.ok:
            if self._logged is not None:
                log.info("web bundle: complete again in %s", self.root)
                self._logged = None
        elif found.detail != self._logged:
            log.warning("web bundle in %s: %s; /ioc/ and /app/ answer 503 %s until then", self.root,
                        found.detail, MISSING_CODE)
            self._logged = found.detail
