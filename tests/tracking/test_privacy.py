"""Authorization and privacy: each role sees exactly what it should, audit records, encryption at rest,
retention, erasure, export, key rotation, and no personal data in logs, events or tracking tables."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from citydata.auth import Principal
from citydata.tracking.schema import TRACKING_TABLES, tracking_hourly, tracking_identity, tracking_pings
from tests.conftest import bearer, token_for
from tests.tracking.conftest import KARON, OLD_TOWN, PATONG, START, arrival_body, arrive_and_enrol, ping, settle

P = "/api/v1/tracking"


class OneIncident:
    """A real (if tiny) IncidentAccess: the agency 'tourist-police-patong' holds an incident about one traveller."""

    def __init__(self, traveller_id: str) -> None:
        self.traveller_id = traveller_id

    async def traveller_visible_to(self, principal: Principal, traveller_id: str) -> bool:
        return principal.agency == "tourist-police-patong" and traveller_id == self.traveller_id


async def send(client: Any, device: str, *pings: dict[str, Any]) -> Any:
    return await client.post(f"{P}/pings", json={"pings": list(pings)}, headers=bearer(device))


async def test_identity_read_is_role_checked_purposeful_and_audited(tp: Any, tclient: Any) -> None:
    tid, _ = await arrive_and_enrol(tp, tclient)
    imm, op, pol, health = [await token_for(tp, r) for r in ("immigration", "operator", "tourist_police", "health")]
    r = await tclient.get(f"{P}/travellers/{tid}/identity", headers=bearer(imm))
    assert r.status_code == 400 and r.json()["code"] == "purpose_required"
    r = await tclient.get(f"{P}/travellers/{tid}/identity", params={"purpose": "verify at checkpoint"},
                          headers=bearer(imm))
    assert r.status_code == 200
    assert r.json()["name"] == "Erika Mustermann 1" and r.json()["passport_no"] == "C01X00T401"
    r = await tclient.get(f"{P}/travellers/{tid}/identity", headers={**bearer(health), "X-Purpose": "contact"})
    assert r.status_code == 200
    assert (await tclient.get(f"{P}/travellers/{tid}/identity", params={"purpose": "curious"},
                              headers=bearer(op))).status_code == 403
    records = await tp.audit.query(subject_type="traveller", subject_id=tid)
    reads = [a for a in records if a["action"] == "tracking.identity_read"]
    assert {(a["role"], a["purpose"]) for a in reads} == {("immigration", "verify at checkpoint"),
                                                          ("health", "contact")}
    # police: only within an incident assigned to them (the default denies, and the denial is audited)
    r = await tclient.get(f"{P}/incident/travellers/{tid}/identity", params={"purpose": "missing person"},
                          headers=bearer(pol))
    assert r.status_code == 403 and r.json()["code"] == "identity_forbidden"
    assert (await tp.audit.query(subject_id=tid, action="tracking.identity_denied"))
    tp.tracking.vault.incident_access = OneIncident(tid)
    mine = await token_for(tp, "tourist_police", agency="tourist-police-patong")
    r = await tclient.get(f"{P}/incident/travellers/{tid}/identity", params={"purpose": "incident 42"},
                          headers=bearer(mine))
    assert r.status_code == 200 and r.json()["phone"] == "+491512345601"
    assert (await tclient.get(f"{P}/incident/travellers/{tid}/identity", params={"purpose": "incident 42"},
                              headers=bearer(pol))).status_code == 403


async def test_passport_lookup_uses_the_blind_index(tp: Any, tclient: Any) -> None:
    tid, _ = await arrive_and_enrol(tp, tclient, 3)
    imm = await token_for(tp, "immigration")
    r = await tclient.get(f"{P}/travellers/lookup", params={"passport_no": "c01x00t4-03", "purpose": "exit check"},
                          headers=bearer(imm))
    assert r.status_code == 200 and r.json()["traveller_ids"] == [tid]
    row = await tp.store.fetch_one(select(tracking_identity).where(tracking_identity.c.traveller_id == tid))
    assert "C01X00T403" not in str(dict(row))


async def test_track_positions_density_and_roles(tp: Any, tclient: Any, dclock: Any) -> None:
    tids = []
    for n in range(12):
        tid, device = await arrive_and_enrol(tp, tclient, n)
        tids.append(tid)
        where = PATONG if n < 11 else OLD_TOWN
        assert (await send(tclient, device, ping(START + timedelta(minutes=2), *where))).status_code == 202
    op, pol, admin, analyst, hotel = [await token_for(tp, r) for r in ("operator", "police", "admin", "analyst",
                                                                         "hotel")]
    r = await tclient.get(f"{P}/positions", headers=bearer(op))
    assert r.status_code == 200 and r.json()["total"] == 12
    item = r.json()["items"][0]
    assert set(item) >= {"traveller_id", "last_seen_at", "fix_age_s", "lat", "lon"}
    assert "name" not in item and item["fix_age_s"] == 180.0
    for token in (analyst, hotel):
        assert (await tclient.get(f"{P}/positions", headers=bearer(token))).status_code == 403
    # density: Patong has 11 (>= k = 10), Talat Yai 1: hidden from the operator, shown to police
    r = (await tclient.get(f"{P}/density", headers=bearer(op))).json()
    assert r["suppressed"] and r["items"] == [{"id": "830202", "count": 11}] and r["suppressed_cells"] == 1
    r = (await tclient.get(f"{P}/density", headers=bearer(pol))).json()
    assert not r["suppressed"] and {i["id"]: i["count"] for i in r["items"]} == {"830202": 11, "830101": 1}
    r = (await tclient.get(f"{P}/density", params={"by": "h3", "res": 7}, headers=bearer(op))).json()
    assert sum(i["count"] for i in r["items"]) + r["suppressed_cells"] >= 11
    # the track: admin yes (audited), operator no, police only in an incident
    r = await tclient.get(f"{P}/travellers/{tids[0]}/track", params={"purpose": "missing"}, headers=bearer(admin))
    assert r.status_code == 200 and len(r.json()["fixes"]) == 1
    assert (await tp.audit.query(subject_id=tids[0], action="tracking.track_read"))
    r = await tclient.get(f"{P}/travellers/{tids[0]}/track", params={"purpose": "missing"}, headers=bearer(op))
    assert r.status_code == 403 and r.json()["code"] == "track_forbidden"
    r = await tclient.get(f"{P}/travellers/{tids[0]}/track", params={"purpose": "missing"}, headers=bearer(pol))
    assert r.status_code == 403


async def test_hotels_see_only_their_guests_and_health_sees_screening(tp: Any, tclient: Any) -> None:
    mine, _ = await arrive_and_enrol(tp, tclient, 1, hotel_id="hotel-a")
    other, _ = await arrive_and_enrol(tp, tclient, 2, hotel_id="hotel-b",
                                      screening={"health": "pass", "test_result": "positive", "goods": "cleared"})
    hotel_a = await token_for(tp, "hotel", agency="hotel-a")
    r = await tclient.get(f"{P}/hotel/guests", headers=bearer(hotel_a))
    assert [g["traveller_id"] for g in r.json()["items"]] == [mine]
    r = await tclient.get(f"{P}/hotel/guests", params={"with_names": True, "purpose": "check-in desk"},
                          headers=bearer(hotel_a))
    assert r.json()["items"][0]["name"] == "Erika Mustermann 1" and "passport_no" not in r.json()["items"][0]
    assert (await tclient.post(f"{P}/hotel/guests/{mine}/check-in", headers=bearer(hotel_a))).status_code == 200
    r = await tclient.post(f"{P}/hotel/guests/{other}/check-in", headers=bearer(hotel_a))
    assert r.status_code == 404
    health, op = await token_for(tp, "health"), await token_for(tp, "operator")
    r = await tclient.get(f"{P}/screening", params={"failed": True}, headers=bearer(health))
    assert [i["traveller_id"] for i in r.json()["items"]] == [other]
    assert r.json()["items"][0]["screening"]["test_result"] == "positive"
    assert (await tclient.get(f"{P}/screening", headers=bearer(op))).status_code == 403


async def test_bad_input_and_departed(tp: Any, tclient: Any, dclock: Any) -> None:
    imm = await token_for(tp, "immigration")
    r = await tclient.post(f"{P}/arrivals", json=arrival_body(checkpoint="PATONG_BEACH"), headers=bearer(imm))
    assert r.status_code == 400 and r.json()["code"] == "unknown_checkpoint"
    assert r.headers["content-type"].startswith("application/problem+json")
    tid, device = await arrive_and_enrol(tp, tclient)
    t = START + timedelta(minutes=1)
    r = await send(tclient, device, {"t": t.isoformat(), "lat": 95.0, "lon": 98.3})
    assert r.status_code == 400 and r.json()["code"] == "coordinates_out_of_range"
    r = await send(tclient, device, ping(START + timedelta(hours=2), *PATONG))
    assert r.status_code == 400 and r.json()["code"] == "time_in_future"
    # a batch with a corrupt time (the 1901 32-bit-epoch artefact) keeps the rest
    r = await send(tclient, device, ping(t, *PATONG), {"t": "1901-12-13T20:45:52Z", "lat": 7.9, "lon": 98.3},
                   {"t": "yesterday", "lat": 7.9, "lon": 98.3}, ping(t + timedelta(minutes=2), *PATONG))
    assert r.status_code == 202
    assert r.json()["accepted"] == 2 and [x["index"] for x in r.json()["rejected"]] == [1, 2]
    # duplicates are idempotent
    r = await send(tclient, device, ping(t, *PATONG))
    assert r.status_code == 202 and r.json()["duplicates"] == 1
    # impossible speed: 400 alone, kept and flagged
    r = await send(tclient, device, ping(t + timedelta(minutes=3), 100.5018, 13.7563))
    assert r.status_code == 400 and r.json()["code"] == "impossible_speed"
    flagged = await tp.store.scalar(select(func.count()).select_from(tracking_pings).where(
        tracking_pings.c.flags == 1))
    assert flagged == 1
    assert await tp.store.scalar(select(func.count()).select_from(tracking_pings)) == 3
    r = await tclient.post(f"{P}/departures", json={"traveller_id": tid, "checkpoint": "HKT"}, headers=bearer(imm))
    assert r.status_code == 200
    r = await send(tclient, device, ping(t + timedelta(minutes=4), *PATONG))
    assert r.status_code == 409 and r.json()["code"] == "traveller_departed"
    r = await tclient.post(f"{P}/departures", json={"traveller_id": "tr_nobody"}, headers=bearer(imm))
    assert r.status_code == 404
    other_device = await token_for(tp, "device")
    r = await send(tclient, other_device, ping(t, *PATONG))
    assert r.status_code == 404 and r.json()["code"] == "traveller_not_found"
    r = await tclient.post(f"{P}/enrol", json={"enrolment_code": "not-a-real-code"})
    assert r.status_code == 404


def _db_bytes(tp: Any) -> bytes:
    data = b""
    for suffix in ("", "-wal"):
        path = Path(str(tp.settings.database_url).removeprefix("sqlite:///") + suffix)
        if path.exists():
            data += path.read_bytes()
    return data


async def test_full_scenario_leaks_no_personal_data(tp: Any, tclient: Any, dclock: Any,
                                                   caplog: pytest.LogCaptureFixture, recorder: Any) -> None:
    caplog.set_level(logging.DEBUG)
    secrets_ = []
    devices = []
    for n in range(3):
        tid, device = await arrive_and_enrol(tp, tclient, n)
        devices.append((tid, device))
        secrets_ += [f"Erika Mustermann {n}", f"C01X00T4{n:02d}", f"+4915123456{n:02d}", "1990-01-31"]
    imm, admin = await token_for(tp, "immigration"), await token_for(tp, "admin")
    t = START + timedelta(minutes=1)
    for _tid, device in devices:
        await send(tclient, device, ping(t, *KARON), {"t": "garbage", "lat": 1, "lon": 2})
    await tclient.get(f"{P}/travellers/{devices[0][0]}/identity", params={"purpose": "check"}, headers=bearer(imm))
    await tclient.post(f"{P}/arrivals", json=arrival_body(9, checkpoint="NOPE"), headers=bearer(imm))
    bad = arrival_body(8)
    bad["traveller"]["birth_date"] = "31/01/1990"
    r = await tclient.post(f"{P}/arrivals", json=bad, headers=bearer(imm))
    assert r.status_code == 400 and "31/01/1990" not in r.text and "Erika" not in r.text
    dclock.advance(hours=3)
    await settle()
    await tp.tracking.tick()
    await tclient.get(f"{P}/travellers/{devices[1][0]}/export", params={"purpose": "DSR 1"}, headers=bearer(admin))
    await tclient.request("DELETE", f"{P}/travellers/{devices[2][0]}", params={"purpose": "DSR 2"},
                          headers=bearer(admin))
    await tp.tracking.flush()
    await settle()
    logs = caplog.text
    assert "tracking" in logs          # the scenario did log
    for secret in secrets_:
        assert secret not in logs, secret
        for event in recorder.events:
            assert secret not in event.model_dump_json()
    # the tracking tables other than the encrypted one, and the whole database file, hold no plaintext
    for table in TRACKING_TABLES:
        for row in await tp.store.fetch_all(select(table)):
            for secret in secrets_[:3] + secrets_[4:7]:
                assert secret not in str(dict(row))
    raw = _db_bytes(tp)
    for secret in secrets_:
        if secret != "1990-01-31":
            assert secret.encode() not in raw, secret


async def test_encrypted_columns_are_unreadable_and_bound_to_their_row(tp: Any, tclient: Any) -> None:
    a, _ = await arrive_and_enrol(tp, tclient, 1)
    b, _ = await arrive_and_enrol(tp, tclient, 2)
    path = str(tp.settings.database_url).removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT traveller_id, name_ct, passport_ct FROM tracking_identity").fetchall()
    finally:
        con.close()
    assert len(rows) == 2
    for _, name_ct, passport_ct in rows:
        assert name_ct.startswith("k1:") and "Erika" not in name_ct and "C01X" not in passport_ct
    # a ciphertext moved to another traveller's row does not decrypt (associated data)
    cipher = tp.tracking.vault.cipher
    token_a = {r[0]: r for r in rows}[a][1]
    assert cipher.decrypt(a, "name", token_a) == "Erika Mustermann 1"
    with pytest.raises(Exception, match="authentication"):
        cipher.decrypt(b, "name", token_a)


async def test_key_rotation_reencrypts_in_chunks(tp: Any, tclient: Any) -> None:
    import base64
    import secrets as pysecrets

    from citydata.tracking.privacy import PiiCipher

    tids = [(await arrive_and_enrol(tp, tclient, n))[0] for n in range(5)]
    vault = tp.tracking.vault
    new_key = ("k2", pysecrets.token_bytes(32))
    vault.cipher = PiiCipher([new_key, *vault.cipher.keys])
    assert await vault.rotate_keys(chunk=2) == 5
    rows = await tp.store.fetch_all(select(tracking_identity.c.name_ct, tracking_identity.c.phone_ct))
    assert all(r["name_ct"].startswith("k2:") and r["phone_ct"].startswith("k2:") for r in rows)
    vault.cipher = PiiCipher([new_key])               # the old key may now go
    imm = await token_for(tp, "immigration")
    r = await tclient.get(f"{P}/travellers/{tids[4]}/identity", params={"purpose": "after rotation"},
                          headers=bearer(imm))
    assert r.json()["name"] == "Erika Mustermann 4"
    assert base64  # keep the import honest
    assert await vault.rotate_keys() == 0


async def test_retention_purges_pings_and_keeps_k_anonymous_aggregates(tp: Any, tclient: Any, dclock: Any) -> None:
    k = tp.settings.tracking_k
    imm = await token_for(tp, "immigration")
    tids = []
    for n in range(k + 1):          # k+1 in Patong in the same hour, one alone in the Old Town
        tid, device = await arrive_and_enrol(tp, tclient, n)
        tids.append(tid)
        where = PATONG if n < k else OLD_TOWN
        await send(tclient, device, ping(START + timedelta(minutes=2), *where),
                   ping(START + timedelta(minutes=4), *where))
    for tid in tids:
        await tclient.post(f"{P}/departures", json={"traveller_id": tid}, headers=bearer(imm))
    assert await tp.store.scalar(select(func.count()).select_from(tracking_pings)) == 2 * (k + 1)
    dclock.advance(days=10)
    assert (await tp.tracking.retention.purge())["pings"] == 0      # not yet: 14 days after departure
    dclock.advance(days=5)
    done = await tp.tracking.retention.purge(chunk=3)
    assert done["pings"] == 2 * (k + 1) and done["travellers"] == k + 1
    assert await tp.store.scalar(select(func.count()).select_from(tracking_pings)) == 0
    hourly = [dict(r) for r in await tp.store.fetch_all(select(tracking_hourly))]
    assert [(h["subdistrict"], h["travellers"]) for h in hourly] == [("830202", k)]
    assert await tp.store.scalar(select(func.count()).select_from(tracking_identity)) == k + 1
    dclock.advance(days=20)
    assert (await tp.tracking.retention.purge())["identities"] == k + 1


async def test_export_and_erasure(tp: Any, tclient: Any) -> None:
    tid, device = await arrive_and_enrol(tp, tclient, 5)
    await send(tclient, device, ping(START + timedelta(minutes=2), *PATONG))
    admin, op = await token_for(tp, "admin"), await token_for(tp, "operator")
    r = await tclient.get(f"{P}/travellers/{tid}/export", params={"purpose": "DSR access"}, headers=bearer(admin))
    body = r.json()
    assert r.status_code == 200 and body["identity"]["passport_no"] == "C01X00T405"
    assert len(body["pings"]) == 1 and body["stay"]["checkpoint"] == "HKT"
    assert (await tclient.get(f"{P}/travellers/{tid}/export", params={"purpose": "x y z"},
                              headers=bearer(op))).status_code == 403
    r = await tclient.request("DELETE", f"{P}/travellers/{tid}", params={"purpose": "DSR erasure"},
                              headers=bearer(admin))
    assert r.status_code == 200 and r.json()["erased"]["pings"] == 1
    for table in TRACKING_TABLES:
        if "traveller_id" in table.c:
            assert await tp.store.scalar(select(func.count()).select_from(table).where(
                table.c.traveller_id == tid)) == 0
    assert (await send(tclient, device, ping(START + timedelta(minutes=3), *PATONG))).status_code == 401
    assert (await tp.audit.query(subject_id=tid, action="tracking.subject_erase"))
