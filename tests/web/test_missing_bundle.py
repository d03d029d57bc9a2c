"""Without the built bundle (never built, partly deleted, a build in progress) the pages answer a 503 problem
that says how to build it, the problem is logged once, and /readyz shows it as a flag (the API stays ready)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from citydata.web.bundle import BUILT, MISSING_CODE, WebBundle

PROBLEM = "application/problem+json"
BUNDLE_LOG = "citydata.web.bundle"


def bundle_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == BUNDLE_LOG and r.levelno == logging.WARNING]


async def test_no_bundle_answers_503_with_how_to_build_it(client: Any, platform: Any, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    platform.web = WebBundle(tmp_path / "never-built")
    caplog.set_level(logging.INFO, logger=BUNDLE_LOG)
    for url in ("/ioc/", "/app/", "/app/sw.js", "/app/manifest.webmanifest", "/static/assets/ioc-abc.js"):
        r = await client.get(url)
        assert r.status_code == 503, (url, r.status_code, r.text[:200])
        assert r.headers["content-type"] == PROBLEM
        body = r.json()
        assert body["code"] == MISSING_CODE
        assert "not built" in body["detail"] and "make web" in body["detail"], body
        assert str(tmp_path) not in r.text   # no server paths in the answer
    assert len(bundle_warnings(caplog)) == 1, bundle_warnings(caplog)   # logged once, not per request
    assert "make web" in bundle_warnings(caplog)[0]
    # what does not come from the bundle still works
    assert (await client.get("/ioc/config.js")).status_code == 200
    assert (await client.get("/ioc")).status_code == 308


async def test_readyz_flags_the_missing_bundle_but_stays_ready(client: Any, platform: Any, tmp_path: Path) -> None:
    ready = (await client.get("/readyz")).json()
    assert ready["checks"]["web"] == {"ok": True, "bundle": True, "detail": "ready"}
    platform.web = WebBundle(tmp_path / "never-built")
    r = await client.get("/readyz")
    assert r.status_code == 200   # a missing bundle disables two pages, not the platform (as a missing model)
    web = r.json()["checks"]["web"]
    assert web["ok"] is True and web["bundle"] is False
    assert "make web" in web["detail"]
    assert str(tmp_path) not in r.text


async def test_an_incomplete_bundle_is_503_naming_what_is_missing(client: Any, platform: Any, bundle_copy: WebBundle,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    platform.web = bundle_copy
    assert (await client.get("/ioc/")).status_code == 200
    assert (await client.get("/static/assets/not-in-the-bundle.js")).status_code == 404   # complete: a 404
    caplog.set_level(logging.INFO, logger=BUNDLE_LOG)
    assets = sorted((bundle_copy.root / "assets").glob("ioc-*.js"))
    assert assets, "the bundle has no ioc script"
    assets[0].unlink()
    missing = f"assets/{assets[0].name}"
    for url in (f"/static/{missing}", "/static/assets/not-in-the-bundle.js"):
        r = await client.get(url)
        assert r.status_code == 503, (url, r.status_code)
        assert r.json()["code"] == MISSING_CODE
        assert missing in r.json()["missing"] and missing in r.json()["detail"]
    # the page itself is there, so it is served (its script then fails, the readiness flag says why)
    assert (await client.get("/ioc/")).status_code == 200
    web = (await client.get("/readyz")).json()["checks"]["web"]
    assert web["bundle"] is False and missing in web["detail"]
    assert len(bundle_warnings(caplog)) == 1
    # the pages themselves gone (a build in progress empties the folder): 503 for them too
    (bundle_copy.root / "ioc" / "index.html").unlink()
    r = await client.get("/ioc/")
    assert r.status_code == 503 and r.json()["code"] == MISSING_CODE
    assert len(bundle_warnings(caplog)) == 2   # a different problem: logged once more
    # rebuilt: served again, and the recovery is logged
    shutil.rmtree(bundle_copy.root)
    shutil.copytree(BUILT, bundle_copy.root)
    assert (await client.get("/ioc/")).status_code == 200
    assert (await client.get(f"/static/{missing}")).status_code == 200
    assert (await client.get("/readyz")).json()["checks"]["web"]["bundle"] is True
    assert any("complete again" in r.getMessage() for r in caplog.records if r.name == BUNDLE_LOG)
