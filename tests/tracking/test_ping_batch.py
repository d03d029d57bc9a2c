"""Pings of concurrent requests are applied as one batch (``citydata.tracking.ping_batch``): one classification,
one store write, one publish; each request still gets its own answer, and only after the commit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from citydata.errors import CityDataError, Conflict, Unavailable, ValidationFailed
from citydata.tracking.schema import tracking_pings
from tests.tracking.conftest import KARON, OLD_TOWN, PATONG, START, arrive_and_enrol, ping


async def _stored(tp: Any, tid: str | None = None) -> int:
    stmt = select(func.count()).select_from(tracking_pings)
    if tid is not None:
        stmt = stmt.where(tracking_pings.c.traveller_id == tid)
    return int(await tp.store.scalar(stmt))


async def test_concurrent_requests_share_a_batch_and_get_their_own_answers(
        tp: Any, tclient: httpx.AsyncClient) -> None:
    people = [await arrive_and_enrol(tp, tclient, n=n) for n in range(1, 9)]
    service = tp.tracking
    batches, requests = service._pings.batches, service._pings.requests
    t = START + timedelta(minutes=1)
    places = [PATONG, KARON, OLD_TOWN]
    bodies: list[Any] = [{"pings": [ping(t, *places[i % 3]), ping(t + timedelta(seconds=30), *places[i % 3])]}
                         for i in range(len(people))]
    bodies[3] = {"pings": [ping(t, *KARON), {"t": "nonsense", "lat": 1, "lon": 2}]}    # one bad item
    bodies[5] = {"pings": [{"t": t.isoformat(), "lat": 91, "lon": 2}]}                # nothing acceptable
    tasks = [asyncio.ensure_future(service.report(tid, body)) for (tid, _), body in zip(people, bodies, strict=True)]
    await asyncio.sleep(0)      # every request is checked and waits for the batch, which starts on the next turn
    service.forget(people[6][0])                            # erased between its check and its batch
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    assert service._pings.requests - requests == 8
    assert service._pings.batches - batches == 1            # all 8 were applied together
    for i, answer in enumerate(answers):
        if i == 3:
            assert not isinstance(answer, BaseException)
            assert answer.accepted == 1 and [r.code for r in answer.rejected] == ["invalid_time"]
        elif i == 5:
            assert isinstance(answer, ValidationFailed) and answer.code == "coordinates_out_of_range", answer
        elif i == 6:
            assert isinstance(answer, Conflict) and answer.code == "traveller_departed"
        else:
            assert not isinstance(answer, BaseException)
            assert (answer.accepted, answer.rejected, answer.duplicates) == (2, [], 0)
    # answered after the commit: every accepted fix is in the store
    assert await _stored(tp) == 2 * 5 + 1
    assert await _stored(tp, people[3][0]) == 1
    # the geofence took each traveller's newest fix
    for i in (0, 1, 2):
        rt = service.travellers[people[i][0]]
        assert rt.last_fix is not None and rt.last_fix.lon == pytest.approx(places[i][0])


async def test_a_failed_commit_fails_the_whole_batch_and_a_resend_is_stored(
        tp: Any, tclient: httpx.AsyncClient, monkeypatch: Any) -> None:
    people = [await arrive_and_enrol(tp, tclient, n=n) for n in (1, 2, 3)]
    service = tp.tracking
    real_insert = tp.store.insert_rows
    failures = [0]

    async def insert_failing_once(table: Any, rows: Any, *args: Any, **kwargs: Any) -> int:
        if table is tracking_pings and not failures[0]:
            failures[0] += 1
            raise Unavailable("write buffer full; retry later", code="overloaded", retry_after=1)
        return await real_insert(table, rows, *args, **kwargs)

    monkeypatch.setattr(tp.store, "insert_rows", insert_failing_once)
    t = START + timedelta(minutes=1)
    bodies = [{"pings": [ping(t, *PATONG)]} for _ in people]
    answers = await asyncio.gather(*(service.report(tid, b) for (tid, _), b in zip(people, bodies, strict=True)),
                                   return_exceptions=True)
    assert failures[0] == 1
    assert all(isinstance(a, CityDataError) and a.code == "overloaded" for a in answers), answers
    assert await _stored(tp) == 0                           # nothing answered 2xx, nothing stored
    # the app sends the same pings again: stored now (the geofence had taken them: duplicates, no new event)
    answers = await asyncio.gather(*(service.report(tid, b) for (tid, _), b in zip(people, bodies, strict=True)))
    assert [(a.accepted, a.duplicates) for a in answers] == [(1, 1)] * 3
    assert await _stored(tp) == 3


async def test_a_request_whose_client_left_is_still_applied(tp: Any, tclient: httpx.AsyncClient) -> None:
    tid, _ = await arrive_and_enrol(tp, tclient)
    service = tp.tracking
    task = asyncio.ensure_future(service.report(tid, {"pings": [ping(START + timedelta(minutes=1), *PATONG)]}))
    await asyncio.sleep(0)      # submitted: the batch starts on the next turn of the loop
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await service._pings.drain()
    assert await _stored(tp, tid) == 1
