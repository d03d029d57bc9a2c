"""The silent-tracker timer: a traveller with no report for ``2 × interval + grace`` is overdue.

One heap entry per traveller at most (its earliest possible deadline). When an entry comes due the monitor
looks at the traveller's newest report: if a report came since, the entry is pushed back to the new deadline;
otherwise the traveller becomes overdue (once). The next report clears it (``TrackingService.report``). Time is
the injectable clock's, so tests drive it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OverdueHit:
    traveller_id: str
    due: float          # epoch seconds of the deadline that passed
    last_seen: float    # epoch seconds of the newest fix (or the arrival)


class OverdueMonitor:
    """Deadlines per traveller; ``last_report_of`` tells the monitor the newest report time (or None when the
    traveller is gone or already overdue)."""

    def __init__(self, limit_s: float, last_report_of: Callable[[str], tuple[float, float] | None]) -> None:
        self.limit_s = float(limit_s)
        self._last_report_of = last_report_of
        self._heap: list[tuple[float, str]] = []
        self._scheduled: set[str] = set()

    def __len__(self) -> int:
        return len(self._scheduled)

    def reported(self, traveller_id: str, at: float) -> None:
        """A report arrived at ``at`` (or the traveller arrived): make sure a deadline is scheduled."""
        if traveller_id not in self._scheduled:
            self._scheduled.add(traveller_id)
            heapq.heappush(self._heap, (at + self.limit_s, traveller_id))

    def forget(self, traveller_id: str) -> None:
        self._scheduled.discard(traveller_id)   # its heap entry is dropped when it comes due

    def due(self, now: float, limit: int = 1_000_000) -> list[OverdueHit]:
        """Travellers that became overdue at or before ``now`` (at most ``limit``; the rest stay due and come
        out in the next call, so a storm after an outage is spread over several timer rounds)."""
        hits: list[OverdueHit] = []
        while self._heap and self._heap[0][0] <= now and len(hits) < limit:
            _, tid = heapq.heappop(self._heap)
            if tid not in self._scheduled:
                continue
            info = self._last_report_of(tid)
            if info is None:
                self._scheduled.discard(tid)
                continue
            last_report, last_seen = info
            deadline = last_report + self.limit_s
            if deadline > now:
                heapq.heappush(self._heap, (deadline, tid))
                continue
            self._scheduled.discard(tid)
            hits.append(OverdueHit(tid, deadline, last_seen))
        return hits
