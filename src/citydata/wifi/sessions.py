"""Sessions to presence: which (hour, hotspot, device) a device was connected in, for how many seconds, and
how many sessions it began there. Pure Python and in memory (the service flushes ``take()`` to the store).

A session is keyed by ``WifiEvent.session_key`` (the RADIUS Acct-Session-Id at that hotspot, or the device at
that hotspot for association pairs). It spans ``[start, end)``; ``start`` is the Start / association time, or
``time - Acct-Session-Time`` of the first record seen of it. Every record extends what is covered up to its time,
so records may come out of order and repeat (RADIUS retransmits): the union is what counts. A session counts
once, in the hour it began; dwell seconds go to each hour it overlaps; the hour it began always holds the device.

A disassociation without an association is a session of one instant; a record of an already closed session
(up to its end) is a repeat and is ignored. Sessions silent for ``timeout_s`` are closed at their last record; a
later Interim-Update / Stop / disassociation of such a session reopens it from where it was closed (its dwell is
not counted twice, the session not again).

Memory is bounded: at most ``max_open`` sessions are open (kept in the order they were last heard from) and at
most ``max_open`` closed keys are remembered (in the order they closed). Past the cap the session heard from
least recently is closed at what it covered, *ended by eviction* (its presence, already gathered, stays; a later
record of it reopens it from there like one after silence), and the oldest closed key is forgotten (a later
record of that session counts as a new session). Both are counted in ``evicted`` (``open`` / ``closed``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from citydata.wifi.model import START, STOP, WifiEvent

HOUR = 3600


@dataclass(slots=True)
class OpenSession:
    hotspot_id: str
    zone: str
    subdistrict: str
    randomised: bool
    start: float
    covered: float
    last_seen: float
    devices: dict[int, str] = field(default_factory=dict)


#: (hour start as epoch seconds, hotspot, device)
PresenceKey = tuple[int, str, str]


@dataclass(slots=True)
class Presence:
    zone: str
    subdistrict: str
    randomised: bool
    sessions: int = 0
    dwell_s: float = 0.0


class SessionTracker:
    def __init__(self, period_of_hour: Callable[[int], int], *, timeout_s: float = 7200.0,
                 max_open: int = 100_000) -> None:
        if max_open < 1:
            raise ValueError("max_open must be at least 1")
        self.period_of_hour = period_of_hour
        self.timeout_s = timeout_s
        self.max_open = max_open
        # OrderedDicts, not dicts: evicting from the front of a plain dict that is also appended to leaves holes
        # that every later ``next(iter(...))`` scans (measured: 39 µs an eviction at 100,000 entries, against
        # 0.3 µs here), which at 2,000 new devices a second made the tracker the event loop's largest cost
        self.open: OrderedDict[str, OpenSession] = OrderedDict()   # least recently heard from first
        self.closed: OrderedDict[str, float] = OrderedDict()       # closed session key -> its end, oldest first
        self.delta: dict[PresenceKey, Presence] = {}
        self.repeats = 0
        self.evicted = {"open": 0, "closed": 0}      # sessions closed by eviction, closed keys forgotten early
        self.unmapped = 0                            # hours whose period had no pseudonym (should not happen)

    def apply(self, ev: WifiEvent, zone: str, subdistrict: str) -> None:
        t = ev.at.timestamp()
        key = ev.session_key
        st = self.open.get(key)
        if st is not None:
            self.open.move_to_end(key)                           # most recently heard from: last to evict
        ended = self.closed.get(key)
        if st is None and ended is not None and t <= ended:
            self.repeats += 1
            return
        if ev.kind == START:
            if st is not None:
                if key.startswith("s") or t <= st.covered:       # a repeated accounting Start
                    st.devices.update(ev.devices)
                    st.last_seen = max(st.last_seen, t)
                    self.repeats += 1
                    return
                self._close(key, st)                             # re-association without a disassociation
            st = self._open(key, ev, zone, subdistrict, t)
            return
        if st is None and ended is not None:
            # a record after the session was closed for silence: it was on all along; go on from its end
            st = OpenSession(ev.hotspot_id, zone, subdistrict, ev.randomised, ended, ended, ended, dict(ev.devices))
            self.closed.pop(key, None)
            self._add_open(key, st)
        elif st is None:
            start = t - (ev.session_time_s or 0)
            st = self._open(key, ev, zone, subdistrict, start)
        else:
            st.devices.update(ev.devices)
        self._extend(st, t)
        if ev.kind == STOP:
            self._close(key, st)

    def _open(self, key: str, ev: WifiEvent, zone: str, subdistrict: str, start: float) -> OpenSession:
        st = OpenSession(ev.hotspot_id, zone, subdistrict, ev.randomised, start, start, start, dict(ev.devices))
        self._add_open(key, st)
        hour = int(start // HOUR) * HOUR
        p = self._presence(st, hour)
        if p is not None:
            p.sessions += 1
        return st

    def _add_open(self, key: str, st: OpenSession) -> None:
        self.open[key] = st
        while len(self.open) > self.max_open:                    # evict the session heard from least recently
            old_key = next(iter(self.open))                      # O(1) on an OrderedDict
            self._close(old_key, self.open[old_key])
            self.evicted["open"] += 1

    def _close(self, key: str, st: OpenSession) -> None:
        self.open.pop(key, None)
        self.closed.pop(key, None)
        self.closed[key] = max(st.covered, st.last_seen)
        while len(self.closed) > self.max_open:                  # forget the key that closed longest ago
            self.closed.popitem(last=False)
            self.evicted["closed"] += 1

    def _extend(self, st: OpenSession, t: float) -> None:
        st.last_seen = max(st.last_seen, t)
        a, b = st.covered, t
        if b <= a:
            return
        hour = int(a // HOUR) * HOUR
        while hour < b:
            overlap = min(b, hour + HOUR) - max(a, hour)
            if overlap > 0:
                p = self._presence(st, hour)
                if p is not None:
                    p.dwell_s += overlap
            hour += HOUR
        st.covered = b

    def _presence(self, st: OpenSession, hour: int) -> Presence | None:
        device = st.devices.get(self.period_of_hour(hour))
        if device is None:
            self.unmapped += 1
            return None
        k = (hour, st.hotspot_id, device)
        p = self.delta.get(k)
        if p is None:
            p = self.delta[k] = Presence(st.zone, st.subdistrict, st.randomised)
        return p

    def take(self) -> dict[PresenceKey, Presence]:
        """The presence gathered since the last call (and forget it)."""
        out, self.delta = self.delta, {}
        return out

    def give_back(self, unwritten: dict[PresenceKey, Presence]) -> None:
        """Put presence that ``take()`` handed out, and that could not be written, back with what was gathered
        since (sessions and dwell added), so that the next flush writes it."""
        for key, p in unwritten.items():
            mine = self.delta.get(key)
            if mine is None:
                self.delta[key] = p
            else:
                mine.sessions += p.sessions
                mine.dwell_s += p.dwell_s

    def expire(self, now: float) -> int:
        """Close sessions silent for ``timeout_s``; forget closed keys older than that. Returns closed count."""
        stale = [k for k, st in self.open.items() if now - st.last_seen > self.timeout_s]
        for k in stale:
            self._close(k, self.open[k])
        cutoff = now - 2 * self.timeout_s
        for k in [k for k, end in self.closed.items() if end < cutoff]:
            del self.closed[k]
        return len(stale)

