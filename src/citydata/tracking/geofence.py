"""The geofence engine: per traveller and fence a state (inside, outside, unknown), with a tolerance buffer,
the accuracy circle, a dwell time, and replay of late fixes.

Classification of one fix against one fence (``Fence.test`` is the fence grown by its ``buffer_m``):

* **inside** when the point lies in ``test``;
* **outside** when the whole accuracy circle lies outside ``test`` (distance from the point > accuracy);
* **ambiguous** otherwise (the circle straddles the border): no evidence either way, the state stays.

The home province is checked for every fix with one vectorised ``shapely.contains_xy`` on the prepared,
buffered polygon (the distance is computed only for the few points outside it). Operator-drawn zones sit in an
``STRtree`` queried with all points at once.

State machine (``step``): an observation that differs from the confirmed state opens a *pending* change; the
change is confirmed once it held for ``dwell_s`` without a contradicting fix, either because a later fix
(same observation, or any fix ``dwell_s`` after the pending one began) says so, or because ``tick(now)`` finds
``now - pending_since >= dwell_s``. A contradicting fix cancels the pending change. So one drifted fix never
flaps the state, and a real exit is confirmed ``dwell_s`` after its first fix.

Late and out-of-order fixes: per traveller the engine keeps the fixes of the last ``lateness_s`` (by fix time),
at most ``window_fixes`` of them, and a snapshot of the states before the oldest of them. A fix older than the
newest processed fix but within the window is inserted and the window is replayed from the snapshot; the events
are the *net* change between the states before and after the replay (no duplicates). Older fixes (older than
``lateness_s``, or than a fix already folded into the snapshot) are stored (flagged) but not replayed. The cap
keeps memory bounded by travellers x ``window_fixes`` whatever the ping rate: a phone every 30 minutes keeps 4
fixes in two hours, while one pinging every few seconds (the load test) kept some 1,200 of them, each ~450 bytes.
Impossible-speed fixes (faster than ``max_speed_kmh`` from the previous accepted fix) never enter the engine.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from citydata.geo.model import M_PER_DEG, buffer_m, distance_m, haversine_m

INSIDE, OUTSIDE, UNKNOWN = "inside", "outside", "unknown"
OBS_INSIDE, OBS_OUTSIDE, OBS_AMBIGUOUS = 1, 0, -1
SMALL_BATCH = 256   # up to this many points, zones are found through the STRtree
NO_ZONES: frozenset[str] = frozenset()
MAX_SHARED_ZONE_SETS = 4096   # distinct sets of overlapping zones shared; past it a set is its own object
BAND_M = 300.0   # a point outside the fence grown by this, with a smaller accuracy radius, is surely outside


class Fix(NamedTuple):
    t: float          # fix time, epoch seconds
    lon: float
    lat: float
    acc: float        # accuracy radius in metres (0 when unknown)


@dataclass(frozen=True)
class Fence:
    """A fence: a place (the province) or an operator-drawn zone. ``home``: leaving it is alerted."""

    id: str
    name: str
    geometry: BaseGeometry
    buffer_m: float = 0.0
    home: bool = False
    test: BaseGeometry = field(init=False, repr=False, compare=False)
    band: BaseGeometry = field(init=False, repr=False, compare=False)   # ``test`` grown by BAND_M

    def __post_init__(self) -> None:
        test = buffer_m(self.geometry, self.buffer_m) if self.buffer_m > 0 else self.geometry
        band = buffer_m(test, BAND_M)
        shapely.prepare(test)
        shapely.prepare(band)
        object.__setattr__(self, "test", test)
        object.__setattr__(self, "band", band)

    def observe_one(self, lon: float, lat: float, acc: float) -> int:
        if shapely.contains_xy(self.test, lon, lat):
            return OBS_INSIDE
        return OBS_OUTSIDE if distance_m(self.test, lon, lat) > acc else OBS_AMBIGUOUS


class FenceSet:
    """The home fence plus any number of zones (in an STRtree), classified for many points at once."""

    def __init__(self, home: Fence, zones: Sequence[Fence] = ()) -> None:
        self.home = home
        self.zones = list(zones)
        self.by_id = {f.id: f for f in (home, *self.zones)}
        self._zone_index = {f.id: i for i, f in enumerate(self.zones)}
        self.tree = shapely.STRtree([z.test for z in self.zones]) if self.zones else None
        self._bounds = [tuple(float(v) for v in z.test.bounds) for z in self.zones]
        self._zone_sets: dict[frozenset[str], frozenset[str]] = {}

    def with_zones(self, zones: Sequence[Fence]) -> FenceSet:
        return FenceSet(self.home, zones)

    def classify_home(self, x: NDArray[np.float64], y: NDArray[np.float64],
                      acc: NDArray[np.float64]) -> NDArray[np.int8]:
        """1 inside, 0 outside, -1 ambiguous, for each point, against the buffered home fence."""
        inside = shapely.contains_xy(self.home.test, x, y)
        out = inside.astype(np.int8)
        rest = np.flatnonzero(~inside)
        if rest.size:
            # most outside points are far: outside the band and more precise than it, no distance needed
            near = shapely.contains_xy(self.home.band, x[rest], y[rest]) | (acc[rest] >= BAND_M)
            rest = rest[near]
        if rest.size:
            # metres from degrees: the smaller (longitude) scale underestimates the distance, so a fix is
            # called outside only when it surely is
            d_deg = shapely.distance(self.home.test, shapely.points(x[rest], y[rest]))
            d_m = d_deg * M_PER_DEG * np.cos(np.radians(y[rest]))
            out[rest] = np.where(d_m > acc[rest], OBS_OUTSIDE, OBS_AMBIGUOUS)
        result: NDArray[np.int8] = out
        return result

    def zone_pairs(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
        """(2, m) array of (point index, zone index) pairs where the zone's (buffered) polygon contains the
        point: one vectorised STRtree query with all points."""
        if self.tree is None or not len(x):
            return np.empty((2, 0), dtype=np.intp)
        if len(x) <= SMALL_BATCH:
            pairs: NDArray[np.intp] = self.tree.query(shapely.points(x, y), predicate="intersects")
            return pairs
        # many points: creating point geometries would cost more than the tests, so sweep instead: sort the
        # points by x once, then each zone tests only the points inside its bounding box
        order = np.argsort(x, kind="stable")
        xs = x[order]
        found_p: list[NDArray[np.intp]] = []
        found_z: list[NDArray[np.intp]] = []
        for zi, (x0, y0, x1, y1) in enumerate(self._bounds):
            lo, hi = np.searchsorted(xs, (x0, x1), side="left")[0], np.searchsorted(xs, x1, side="right")
            cand = order[lo:hi]
            cand = cand[(y[cand] >= y0) & (y[cand] <= y1)]
            if cand.size:
                hit = cand[shapely.contains_xy(self.zones[zi].test, x[cand], y[cand])]
                found_p.append(hit)
                found_z.append(np.full(hit.size, zi, dtype=np.intp))
        if not found_p:
            return np.empty((2, 0), dtype=np.intp)
        return np.vstack((np.concatenate(found_p), np.concatenate(found_z)))

    def zones_containing(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> list[frozenset[str]]:
        """For each point, the ids of the zones containing it. The sets are shared (one object per distinct set:
        most points are in no zone), as the engine keeps one per fix in its windows."""
        pairs = self.zone_pairs(x, y)
        if not pairs.shape[1]:
            return [NO_ZONES] * len(x)
        out: list[set[str] | None] = [None] * len(x)
        for p, z in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
            found = out[p]
            if found is None:
                found = out[p] = set()
            found.add(self.zones[z].id)
        return [NO_ZONES if s is None else self._shared(frozenset(s)) for s in out]

    def _shared(self, zones: frozenset[str]) -> frozenset[str]:
        known = self._zone_sets.get(zones)
        if known is not None:
            return known
        if len(self._zone_sets) < MAX_SHARED_ZONE_SETS:
            self._zone_sets[zones] = zones
        return zones

    def classify(self, x: NDArray[np.float64], y: NDArray[np.float64],
                 acc: NDArray[np.float64]) -> tuple[NDArray[np.int8], NDArray[np.intp]]:
        """The home observation of every point and the (point, zone) containment pairs, vectorised."""
        return self.classify_home(x, y, acc), self.zone_pairs(x, y)


@dataclass(slots=True)
class FenceState:
    state: str = UNKNOWN
    since: float | None = None
    pending: str | None = None
    pending_since: float = 0.0
    pending_fix: Fix | None = None
    still_at: float | None = None
    evidence: Fix | None = None       # the newest fix of the confirmed state's first evidence


@dataclass(frozen=True, slots=True)
class Transition:
    fence_id: str
    old: str
    new: str
    since: float              # when the new state began (its first fix)
    fix: Fix                  # the newest evidence
    kind: str = "change"      # "change" or "still_outside"


class Observed(NamedTuple):
    fix: Fix
    home: int                 # OBS_*
    zones: frozenset[str]     # zones containing the point


States = dict[str, FenceState]


def copy_states(states: States) -> States:
    return {k: replace(v) for k, v in states.items()}


@dataclass(slots=True)
class TravellerFences:
    """One traveller's geofence memory."""

    states: States = field(default_factory=dict)
    base: States = field(default_factory=dict)
    window: list[Observed] = field(default_factory=list)    # sorted by fix time
    folded_t: float | None = None     # the newest fix folded into ``base``: older fixes cannot be replayed
    last_t: float | None = None
    last_accepted: Fix | None = None


@dataclass
class StepResult:
    transitions: list[Transition] = field(default_factory=list)
    accepted: list[Fix] = field(default_factory=list)
    too_fast: list[Fix] = field(default_factory=list)
    too_late: list[Fix] = field(default_factory=list)
    duplicates: list[Fix] = field(default_factory=list)


def speed_kmh(a: Fix, b: Fix) -> float:
    dt = abs(b.t - a.t)
    d = haversine_m(a.lon, a.lat, b.lon, b.lat)
    # the two accuracy circles may overlap: only the distance beyond them counts
    d = max(0.0, d - a.acc - b.acc)
    if dt <= 0:
        return math.inf if d > 0 else 0.0
    return d / dt * 3.6


class GeofenceEngine:
    """Pure state logic over a ``FenceSet``; the tracking service feeds it and turns transitions into events."""

    def __init__(self, fences: FenceSet, *, dwell_s: float, lateness_s: float, still_outside_s: float,
                 max_speed_kmh: float, window_fixes: int = 64) -> None:
        if window_fixes < 1:
            raise ValueError("window_fixes must be at least 1")
        self.fences = fences
        self.window_fixes = int(window_fixes)
        self.dwell_s, self.lateness_s = float(dwell_s), float(lateness_s)
        self.still_outside_s, self.max_speed_kmh = float(still_outside_s), float(max_speed_kmh)

    # -- observations ----------------------------------------------------------------------------------------
    def observe(self, fixes: Sequence[Fix]) -> list[Observed]:
        if not fixes:
            return []
        arr = np.asarray(fixes, dtype=np.float64)
        home = self.fences.classify_home(arr[:, 1], arr[:, 2], arr[:, 3])
        zones = self.fences.zones_containing(arr[:, 1], arr[:, 2])
        return [Observed(f, int(h), z) for f, h, z in zip(fixes, home.tolist(), zones, strict=True)]

    def _zone_obs(self, fence_id: str, ob: Observed) -> int:
        if fence_id in ob.zones:
            return OBS_INSIDE
        fence = self.fences.by_id.get(fence_id)
        if fence is None:          # a zone deleted since
            return OBS_OUTSIDE
        return fence.observe_one(ob.fix.lon, ob.fix.lat, ob.fix.acc)

    # -- the state machine -----------------------------------------------------------------------------------
    def _confirm(self, fence_id: str, st: FenceState, out: list[Transition]) -> None:
        assert st.pending is not None and st.pending_fix is not None
        old = st.state
        st.state, st.since = st.pending, st.pending_since
        fix = st.pending_fix
        st.pending, st.pending_fix, st.still_at, st.evidence = None, None, None, fix
        if old == UNKNOWN and st.state == OUTSIDE:
            return                                     # first knowledge of being outside: nothing happened
        out.append(Transition(fence_id, old, st.state, st.since or fix.t, fix))

    def _apply(self, fence_id: str, st: FenceState, obs: int, fix: Fix, out: list[Transition]) -> None:
        if st.pending is not None and fix.t - st.pending_since >= self.dwell_s:
            self._confirm(fence_id, st, out)           # the pending change held for the dwell time
        if obs == OBS_AMBIGUOUS:
            return
        seen = INSIDE if obs == OBS_INSIDE else OUTSIDE
        if seen == st.state:
            st.pending, st.pending_fix = None, None
            return
        if st.state == UNKNOWN and seen == OUTSIDE:
            st.state, st.since, st.pending, st.pending_fix, st.evidence = OUTSIDE, fix.t, None, None, fix
            return
        if st.pending != seen:
            st.pending, st.pending_since = seen, fix.t
        st.pending_fix = fix
        if fix.t - st.pending_since >= self.dwell_s:
            self._confirm(fence_id, st, out)

    def step(self, states: States, ob: Observed) -> list[Transition]:
        out: list[Transition] = []
        home_id = self.fences.home.id
        self._apply(home_id, states.setdefault(home_id, FenceState()), ob.home, ob.fix, out)
        for zone_id in set(ob.zones) | {z for z in states if z != home_id}:
            st = states.setdefault(zone_id, FenceState())
            self._apply(zone_id, st, self._zone_obs(zone_id, ob), ob.fix, out)
            if st.state in (OUTSIDE, UNKNOWN) and st.pending is None:
                del states[zone_id]                    # zones are kept sparse: absent means not inside
        return out

    def tick(self, states: States, now: float) -> list[Transition]:
        """Confirm pending changes older than the dwell time; repeat still-outside for the home fence."""
        out: list[Transition] = []
        for fence_id, st in list(states.items()):
            if st.pending is not None and now - st.pending_since >= self.dwell_s:
                self._confirm(fence_id, st, out)
            if fence_id == self.fences.home.id and st.state == OUTSIDE and st.since is not None:
                last = st.still_at or st.since
                if now - last >= self.still_outside_s:
                    st.still_at = now
                    fix = st.evidence or Fix(st.since, math.nan, math.nan, 0.0)
                    out.append(Transition(fence_id, OUTSIDE, OUTSIDE, st.since, fix, "still_outside"))
            if fence_id != self.fences.home.id and st.state in (OUTSIDE, UNKNOWN) and st.pending is None:
                del states[fence_id]
        return out

    def needs_tick(self, states: States) -> bool:
        home = states.get(self.fences.home.id)
        return any(st.pending is not None for st in states.values()) or (
            home is not None and home.state == OUTSIDE)

    # -- feeding one traveller's fixes -----------------------------------------------------------------------
    def process(self, tf: TravellerFences, fixes: Sequence[Fix], now: float, *,
                observed: Mapping[Fix, Observed] | None = None) -> StepResult:
        """Feed a traveller's new fixes (any order). Returns the transitions and how each fix was taken.
        ``observed``: the fixes already classified (``observe`` of many travellers' fixes at once); a fix
        missing from it is classified here."""
        res = StepResult()
        ordered = sorted(fixes)
        seen_t: set[float] = set()
        fresh: list[Fix] = []
        late: list[Fix] = []
        for fix in ordered:
            if fix.t in seen_t or (tf.last_t is not None and fix.t == tf.last_t) or _in_window(tf.window, fix.t):
                res.duplicates.append(fix)
                continue
            seen_t.add(fix.t)
            if tf.last_t is not None and fix.t < tf.last_t:
                if fix.t < tf.last_t - self.lateness_s or (tf.folded_t is not None and fix.t <= tf.folded_t):
                    res.too_late.append(fix)
                else:
                    late.append(fix)
            else:
                fresh.append(fix)
        late = [f for f in late if self._speed_ok(tf, f, res)]
        before = copy_states(tf.states) if late else None
        if late:
            obs = self._observed(late, observed)
            for ob in obs:
                bisect.insort(tf.window, ob, key=_fix_time)
            res.accepted.extend(late)
        for fix in fresh:
            if not self._speed_ok(tf, fix, res):
                continue
            ob = self._observed([fix], observed)[0]
            tf.window.append(ob)
            res.accepted.append(fix)
            tf.last_t = fix.t
            tf.last_accepted = fix
            if before is None:
                res.transitions.extend(self.step(tf.states, ob))
        if before is not None:
            # replay the whole window from the snapshot, then report the net change only
            states = copy_states(tf.base)
            for ob in tf.window:
                self.step(states, ob)
            self.tick(states, now)      # what the clock confirmed meanwhile (its output is in the net change)
            tf.states = states
            res.transitions.extend(self._net_change(before, states))
            newest = tf.window[-1].fix if tf.window else None
            if newest is not None and (tf.last_t is None or newest.t >= tf.last_t):
                tf.last_t = newest.t
        self._trim(tf)
        res.transitions.extend(self.tick(tf.states, now))
        return res

    def _observed(self, fixes: list[Fix], known: Mapping[Fix, Observed] | None) -> list[Observed]:
        if known is None:
            return self.observe(fixes)
        missing = [f for f in fixes if f not in known]
        found = dict(zip(missing, self.observe(missing), strict=True)) if missing else {}
        return [known.get(f) or found[f] for f in fixes]

    def _speed_ok(self, tf: TravellerFences, fix: Fix, res: StepResult) -> bool:
        prev: Fix | None = None
        if tf.window:
            i = bisect.bisect_left(tf.window, fix.t, key=_fix_time)
            prev = tf.window[i - 1].fix if i > 0 else None
        if prev is None and tf.last_accepted is not None and tf.last_accepted.t < fix.t:
            prev = tf.last_accepted
        if prev is not None and speed_kmh(prev, fix) > self.max_speed_kmh:
            res.too_fast.append(fix)
            return False
        return True

    def _trim(self, tf: TravellerFences) -> None:
        """Fold the fixes older than ``lateness_s`` (before the newest), and those past ``window_fixes``, into
        the snapshot."""
        if not tf.window:
            return
        horizon = tf.window[-1].fix.t - self.lateness_s
        cut = max(0, len(tf.window) - self.window_fixes)
        while cut < len(tf.window) - 1 and tf.window[cut].fix.t < horizon:
            cut += 1
        if not cut:
            return
        for ob in tf.window[:cut]:
            self.step(tf.base, ob)
        tf.folded_t = tf.window[cut - 1].fix.t
        del tf.window[:cut]

    def _net_change(self, before: States, after: States) -> list[Transition]:
        out: list[Transition] = []
        for fence_id in set(before) | set(after):
            old = before.get(fence_id, FenceState()).state
            st = after.get(fence_id, FenceState())
            new = st.state
            if old == new or (old == UNKNOWN and new == OUTSIDE) or (old == OUTSIDE and new == UNKNOWN):
                continue
            fix = st.evidence or Fix(st.since or 0.0, math.nan, math.nan, 0.0)
            out.append(Transition(fence_id, old, new, st.since or fix.t, fix))
        return out

    def start(self, tf: TravellerFences, t: float, *, inside_home: bool = True) -> None:
        """A new traveller: inside the home fence from ``t`` (arrival at a checkpoint)."""
        st = FenceState(INSIDE if inside_home else UNKNOWN, t)
        tf.states[self.fences.home.id] = st
        tf.base = copy_states(tf.states)


def _fix_time(ob: Observed) -> float:
    return ob.fix.t


def _in_window(window: list[Observed], t: float) -> bool:
    """Whether a fix of time ``t`` is in the (time-sorted) window: a bisection, not a scan."""
    i = bisect.bisect_left(window, t, key=_fix_time)
    return i < len(window) and window[i].fix.t == t


def summarize(tf: TravellerFences, home_id: str) -> dict[str, Any]:
    st = tf.states.get(home_id)
    return {"state": st.state if st else UNKNOWN, "since": st.since if st else None,
            "pending": st.pending if st else None}
