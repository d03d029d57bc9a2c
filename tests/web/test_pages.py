"""The IOC dashboard (/ioc/) and the tourist app (/app/) served in process from the committed bundle: content
types and cache headers, every asset a page names, the PWA files, i18n, runtime settings, 404s and traversal."""

from __future__ import annotations

import json
import re
from typing import Any

from citydata.config import load_settings
from citydata.web.bundle import BUILT
from tests.conftest import bearer, token_for

PROBLEM = "application/problem+json"
HTML = "text/html; charset=utf-8"


def referenced(html: str) -> list[str]:
    """The same-origin URLs a built page loads (scripts, styles, preloads, manifest, icons)."""
    urls = re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"', html)
    return [u for u in urls if not u.startswith(("http:", "https:", "//", "data:"))]


def resolve(page: str, url: str) -> str:
    return url if url.startswith("/") else page + url.removeprefix("./")


async def test_pages_are_html_never_cached_and_nosniff(client: Any) -> None:
    for page, marker in (("/ioc/", "login-form"), ("/app/", 'rel="manifest"')):
        r = await client.get(page)
        assert r.status_code == 200, (page, r.text[:200])
        assert r.headers["content-type"] == HTML
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.text.lstrip().lower().startswith("<!doctype html>")
        assert marker in r.text, page
        assert r.content == (BUILT / page.strip("/") / "index.html").read_bytes()


async def test_pages_without_slash_redirect_permanently(client: Any) -> None:
    for page in ("/ioc", "/app"):
        r = await client.get(page)
        assert r.status_code == 308
        assert r.headers["location"] == "./"


async def test_every_file_a_page_names_is_served_with_its_type_and_cache_policy(client: Any) -> None:
    types = {".js": "javascript", ".css": "text/css", ".webmanifest": "application/manifest+json",
             ".png": "image/png", ".svg": "image/svg+xml"}
    seen = 0
    for page in ("/ioc/", "/app/"):
        html = (await client.get(page)).text
        urls = referenced(html)
        assert any(u.endswith("config.js") for u in urls), page
        assert any(u.startswith("/static/assets/") for u in urls), page
        for url in urls:
            path = resolve(page, url)
            r = await client.get(path)
            assert r.status_code == 200, (page, path, r.status_code, r.text[:200])
            suffix = "." + path.rsplit(".", 1)[-1]
            assert types[suffix] in r.headers["content-type"], (path, r.headers["content-type"])
            if path.startswith("/static/assets/"):   # content-hashed: cached for a year
                assert r.headers["cache-control"] == "public, max-age=31536000, immutable", path
                assert r.headers["x-content-type-options"] == "nosniff"
                assert r.content == (BUILT / path.removeprefix("/static/")).read_bytes()
            else:
                assert r.headers["cache-control"] == "no-cache", path
            seen += 1
    assert seen >= 8


async def test_bundle_record_outside_assets_is_not_cached_for_a_year(client: Any) -> None:
    r = await client.get("/static/bundle.json")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-cache"
    assert "ioc/index.html" in r.json()["files"]


async def test_pwa_manifest_icons_and_service_worker(client: Any) -> None:
    r = await client.get("/app/manifest.webmanifest")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(r.content)
    assert manifest["start_url"] == "/app/" and manifest["scope"] == "/app/"
    assert manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        got = await client.get(icon["src"])
        assert got.status_code == 200, icon
        assert got.headers["content-type"].startswith(icon["type"]), icon
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes   # what browsers need to offer installation
    png = await client.get("/app/icon-192.png")
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")

    sw = await client.get("/app/sw.js")
    assert sw.status_code == 200
    assert sw.headers["content-type"].startswith("application/javascript")
    assert sw.headers["cache-control"] == "no-cache"   # a new service worker must be picked up at once
    assert sw.headers["service-worker-allowed"] == "/"
    assert "addEventListener('install'" in sw.text or 'addEventListener("install"' in sw.text
    # only the listed page files: anything else under /app/ is a 404 problem, not a directory listing
    for name in ("index.html", "secret.txt", "bundle.json"):
        r = await client.get(f"/app/{name}")
        assert r.status_code == 404, name
        assert r.headers["content-type"] == PROBLEM


async def test_i18n_chunk_carries_thai_english_and_chinese(client: Any) -> None:
    html = (await client.get("/app/")).text
    chunks = [u for u in referenced(html) if re.search(r"/static/assets/i18n-[^/]+\.js$", u)]
    assert len(chunks) == 1, referenced(html)
    assert chunks == [u for u in referenced((await client.get("/ioc/")).text) if "/i18n-" in u]   # shared
    r = await client.get(chunks[0])
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    text = r.content.decode("utf-8")
    for needle in ("Sign in", "Asia/Bangkok"):
        assert needle in text, needle
    assert re.search(r"[\u0e00-\u0e7f]{3}", text), "no Thai text in the i18n chunk"
    assert re.search(r"[\u4e00-\u9fff]{2}", text), "no Chinese text in the i18n chunk"


async def test_config_js_carries_the_tile_url_from_the_environment(client_with: Any, tmp_path: Any) -> None:
    tiles = "https://tiles.example.test/phuket/{z}/{x}/{y}.png"
    settings = load_settings(environ={"CITYDATA_MAP_TILE_URL": tiles, "CITYDATA_MAP_TILE_ATTRIBUTION": "© Test"},
                             data_dir=tmp_path / "data", log_format="text", mqtt_url="none://")
    platform, client = await client_with(settings=settings)
    for page in ("/ioc/", "/app/"):
        r = await client.get(page + "config.js")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/javascript; charset=utf-8"
        assert r.headers["cache-control"] == "no-cache"
        prefix, _, rest = r.text.partition("=")
        assert prefix.strip() == "window.CITYDATA_CONFIG"
        config = json.loads(rest.strip().removesuffix(";"))
        assert config["tileUrl"] == tiles
        assert config["tileAttribution"] == "© Test"
        assert config["timezone"] == platform.settings.timezone
        assert config["k"] == platform.settings.tracking_k


async def test_empty_tile_url_reaches_the_page_as_empty(client_with: Any) -> None:
    _, client = await client_with(map_tile_url="")
    r = await client.get("/ioc/config.js")
    config = json.loads(r.text.partition("=")[2].strip().removesuffix(";"))
    assert config["tileUrl"] == ""   # the map draws vector layers on a plain background


async def test_unknown_assets_are_404_problems(client: Any) -> None:
    for url in ("/static/assets/nope-12345678.js", "/static/assets", "/static/ioc", "/static/nothing/here.css"):
        r = await client.get(url)
        assert r.status_code == 404, url
        assert r.headers["content-type"] == PROBLEM, url
        assert r.json()["code"] == "not_found", url


async def test_path_traversal_is_refused(client: Any, tmp_path: Any) -> None:
    # the targets exist: the bundle's own Python module and the package beside it
    assert (BUILT.parent / "bundle.py").is_file() and (BUILT.parents[1] / "app.py").is_file()
    for url in ("/static/%2e%2e/bundle.py", "/static/assets/..%2F..%2Fbundle.py", "/static/%2e%2e/%2e%2e/app.py",
                "/static/assets/%2e%2e/%2e%2e/__init__.py", "/static/..%2F..%2F..%2F..%2Fpyproject.toml"):
        r = await client.get(url)
        assert r.status_code == 404, (url, r.status_code)
        assert r.headers["content-type"] == PROBLEM, url
        assert b"import" not in r.content, url
    for url in ("/static/assets/%00.js", "/static/assets/a%5Cb.js", "/static//etc/passwd", "/static/a b.js"):
        r = await client.get(url)
        assert r.status_code in (400, 404), (url, r.status_code)
        assert r.headers["content-type"] == PROBLEM, url
    r = await client.get("/app/..%2Fioc%2Findex.html")   # page files: a fixed list of names
    assert r.status_code in (400, 404) and r.headers["content-type"] == PROBLEM


async def test_a_symlink_out_of_the_bundle_is_not_followed(client: Any, platform: Any, bundle_copy: Any,
                                                          tmp_path: Any) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    (bundle_copy.root / "assets" / "leak.js").symlink_to(secret)
    platform.web = bundle_copy
    r = await client.get("/static/assets/leak.js")
    assert r.status_code == 404
    assert b"not for the web" not in r.content


async def test_pages_are_open_to_everyone_even_without_public_reads(client_with: Any) -> None:
    platform, client = await client_with(read_public=False)
    for url in ("/ioc/", "/app/", "/ioc/config.js", "/app/sw.js"):
        r = await client.get(url)
        assert r.status_code == 200, (url, r.status_code)
    # the data the dashboard loads is not: signing in is done on the page, against the API
    r = await client.get("/api/v1/alerts")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    r = await client.get("/api/v1/auth/me")
    assert r.json()["role"] == "public"
    password = platform.settings.admin_password.get_secret_value()
    login = await client.post("/api/v1/auth/login", json={"username": "admin", "password": password})
    assert login.status_code == 200
    assert (await client.get("/ioc/")).status_code == 200   # with the session cookie
    assert (await client.get("/api/v1/alerts")).status_code == 200
    token = await token_for(platform, "device")
    assert (await client.get("/ioc/", headers=bearer(token))).status_code == 200   # any role


async def test_a_stale_session_cookie_still_gets_the_sign_in_page(client: Any, platform: Any) -> None:
    client.cookies.set("citydata_session", "stale.revoked.session")
    for _ in range(platform.settings.login_max_failures + 3):   # reloads must not lock the address out
        r = await client.get("/ioc/")
        assert r.status_code == 200, r.text[:200]
        assert "login-form" in r.text
    assert (await client.get("/ioc/config.js")).status_code == 200
    # the API still refuses the stale cookie, and signing in on the page still works
    assert (await client.get("/api/v1/alerts")).status_code == 401
    client.cookies.clear()
    password = platform.settings.admin_password.get_secret_value()
    login = await client.post("/api/v1/auth/login", json={"username": "admin", "password": password})
    assert login.status_code == 200, login.text
