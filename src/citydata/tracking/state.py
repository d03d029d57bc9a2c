"""What a node keeps in memory per traveller, and loading it from the store (on start, and on the node that
takes a partition over in multi-node mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from citydata.tracking.geofence import INSIDE, FenceState, Fix, TravellerFences, copy_states
from citydata.tracking.schema import tracking_fence_state, tracking_travellers

if TYPE_CHECKING:
    from citydata.store import Store


def to_epoch(value: datetime) -> float:
    """Seconds since 1970 (the geofence and timers work in these)."""
    return value.timestamp()


def from_epoch(value: float) -> datetime:
    """The UTC datetime of seconds since 1970 (what the store's columns take)."""
    return datetime.fromtimestamp(value, UTC)


@dataclass(slots=True)
class Runtime:
    """What this node keeps in memory per traveller."""

    traveller_id: str
    arrived: float
    hotel_id: str | None
    active: bool = True
    fences: TravellerFences = field(default_factory=TravellerFences)
    last_fix: Fix | None = None
    last_report: float | None = None
    overdue_since: float | None = None


def last_seen_row(rt: Runtime) -> dict[str, Any]:
    """The traveller's last-seen columns as bind parameters (``b_*``) for the batched last-seen update."""
    fix = rt.last_fix
    return {"b_tid": rt.traveller_id, "b_last_t": from_epoch(fix.t) if fix else None, "b_lat": fix.lat if fix else None,
            "b_lon": fix.lon if fix else None, "b_acc": fix.acc if fix else None,
            "b_report": from_epoch(rt.last_report) if rt.last_report else None,
            "b_overdue": from_epoch(rt.overdue_since) if rt.overdue_since else None}


async def load_runtimes(store: Store, home_id: str, fence_ids: set[str], keep: Callable[[str], bool] | None = None,
                        *, traveller_id: str | None = None,
                        partition: tuple[int, int] | None = None) -> list[tuple[Runtime, str | None]]:
    """The active travellers' state from the store (those ``keep`` accepts): last fix, last report, overdue
    since, fence states; with their device token id. ``partition`` (k, of n): only rows stored with that
    partition of n, and those stored without one or with another n (``keep`` decides for them)."""
    t, fs = tracking_travellers, tracking_fence_state
    stmt = select(t).where(t.c.status == "active")
    fstmt = select(fs)
    if traveller_id is not None:
        stmt = stmt.where(t.c.traveller_id == traveller_id)
        fstmt = fstmt.where(fs.c.traveller_id == traveller_id)
    if partition is not None:
        k, n = partition
        mine = or_(and_(t.c.bus_partitions == n, t.c.bus_partition == k), t.c.bus_partitions.is_(None),
                   t.c.bus_partitions != n)
        stmt = stmt.where(mine)
        fstmt = fstmt.join(t, t.c.traveller_id == fs.c.traveller_id).where(t.c.status == "active", mine)
    out: dict[str, tuple[Runtime, str | None]] = {}
    for row in await store.fetch_all(stmt):
        if keep is not None and not keep(row["traveller_id"]):
            continue
        rt = Runtime(row["traveller_id"], to_epoch(row["arrived_at"]), row["hotel_id"])
        if row["last_t"] is not None:
            rt.last_fix = Fix(to_epoch(row["last_t"]), row["last_lon"], row["last_lat"], row["last_accuracy_m"] or 0.0)
            rt.fences.last_t = rt.last_fix.t
            rt.fences.last_accepted = rt.last_fix
        rt.last_report = to_epoch(row["last_report_at"]) if row["last_report_at"] else None
        rt.overdue_since = to_epoch(row["overdue_since"]) if row["overdue_since"] else None
        out[rt.traveller_id] = (rt, row["device_token_id"])
    for row in await store.fetch_all(fstmt):
        known = out.get(row["traveller_id"])
        if known is None or (row["fence_id"] not in fence_ids):
            continue
        since = to_epoch(row["since"]) if row["since"] else None
        known[0].fences.states[row["fence_id"]] = FenceState(row["state"], since, evidence=known[0].last_fix)
    for rt, _ in out.values():
        if home_id not in rt.fences.states:          # no change since the arrival: inside
            rt.fences.states[home_id] = FenceState(INSIDE, rt.arrived)
        rt.fences.base = copy_states(rt.fences.states)
    return list(out.values())
