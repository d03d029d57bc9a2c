"""The ckanapi client (a real CKAN client) against ``citydata serve`` over HTTP: samples imported and keys
created beforehand on the same database (in process: the CLI is tested in tests/datasets), then every read
action a startup uses, CKAN errors mapped to ckanapi's exceptions, the rate limit, and the usage count."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import ckanapi
import pytest
from ckanapi.errors import CKANAPIError, NotFound, ValidationError

from citydata.cli.opendata import offline_opendata
from citydata.datasets.samples import SAMPLES
from tests.conftest import REPO, free_port, make_settings
from tests.e2e.conftest import CLI, cli_env, wait_http


async def _prepare(tmp_path: Path) -> tuple[str, str]:
    async with offline_opendata(make_settings(tmp_path, mqtt_url="none://")) as svc:
        for sample in SAMPLES:
            assert (await svc.analytics.datasets.import_file(sample.path, sample.name, sample.options())).committed
        _, key = await svc.keys.create("Andaman Startup", rate_per_min=1000)
        _, tight = await svc.keys.create("Tight", rate_per_min=2)
    return key, tight


async def _usage(tmp_path: Path) -> dict[str, tuple[int, int]]:
    async with offline_opendata(make_settings(tmp_path, mqtt_url="none://")) as svc:
        return {k["name"]: (k["requests"], k["limited"]) for k in await svc.keys.all()}


def test_ckanapi_against_a_running_server(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(tmp_path / "data", CITYDATA_MQTT_URL="none://", CITYDATA_VISION_ENABLED="false",
                  CITYDATA_OPENDATA_REQUIRE_KEY="true")
    key, tight = asyncio.run(_prepare(tmp_path))
    assert key.startswith("od_") and tight.startswith("od_")
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", proc=proc)
        with ckanapi.RemoteCKAN(url, apikey=key) as ckan:
            names = ckan.action.package_list()
            assert "phuket-tourist-arrivals" in names
            pkg = ckan.action.package_show(id="phuket-tourist-arrivals")
            assert pkg["organization"]["name"] == "phuket-provincial-office"
            assert pkg["data_classification"] and pkg["license_id"]
            assert ckan.action.package_search(q="crime")["count"] == 1
            assert ckan.action.organization_list() == ["phuket-pao", "phuket-provincial-office"]
            csv_res = pkg["resources"][0]
            assert ckan.action.resource_show(id=csv_res["id"])["datastore_active"] is True
            found = ckan.action.datastore_search(resource_id=csv_res["id"], filters={"nationality": "Russia"},
                                                 sort="arrivals desc", limit=5, offset=0)
            assert found["total"] == 36 and len(found["records"]) == 5
            assert found["records"][0]["arrivals"] >= found["records"][-1]["arrivals"]
            assert ckan.action.datastore_search(resource_id=csv_res["id"], q="Singapore RASSADA")["total"] == 12
            with pytest.raises(ValidationError) as err:
                ckan.action.datastore_search(resource_id=csv_res["id"], filters={"passport": "x"})
            assert err.value.error_dict["filters"] == ['field "passport" not in table']
            with pytest.raises(NotFound):
                ckan.action.package_show(id="no-such-dataset")
            download = ckan.session.get(csv_res["url"], headers={"X-CKAN-API-Key": key}, timeout=30)
            assert download.status_code == 200 and download.text.startswith("month,nationality")
        with ckanapi.RemoteCKAN(url, apikey=key, get_only=True) as ckan:   # GET with query parameters
            assert ckan.action.package_show(id=pkg["id"])["name"] == "phuket-tourist-arrivals"
        with ckanapi.RemoteCKAN(url) as anonymous, pytest.raises(ckanapi.NotAuthorized):
            anonymous.action.package_list()                                  # CITYDATA_OPENDATA_REQUIRE_KEY
        with ckanapi.RemoteCKAN(url, apikey=tight) as ckan:
            ckan.action.package_list()
            ckan.action.package_list()
            with pytest.raises(CKANAPIError, match="429"):
                ckan.action.package_list()
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    usage = asyncio.run(_usage(tmp_path))
    assert usage["Andaman Startup"] == (11, 0) and usage["Tight"] == (3, 1)
