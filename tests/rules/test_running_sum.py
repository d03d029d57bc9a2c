"""The running window sum equals a brute-force sum, whatever the order of points, trims and bounds."""

from __future__ import annotations

import math
import random

from citydata.rules.conditions.base import Limits, add_point, running_sum


def test_running_sum_matches_brute_force() -> None:
    rng = random.Random(11)
    for trial in range(30):
        window = rng.choice([60.0, 600.0, 3600.0])
        limits = Limits(max_points=rng.choice([50, 10_000]))
        st: dict = {}
        t = 0.0
        for _ in range(600):
            t += rng.choice([1.0, 5.0, 30.0, 120.0])
            point_t = t - rng.choice([0.0, 0.0, 0.0, 10.0, 200.0])   # some arrive late, out of order
            add_point(st, "s", point_t, rng.uniform(-5, 50), window, limits)
            now = max(p[0] for p in st["s"]["s"])
            total, count = running_sum(st, "s", st["s"]["s"], now, window)
            inside = [p[1] for p in st["s"]["s"] if now - window < p[0] <= now]
            assert count == len(inside), trial
            assert math.isclose(total, math.fsum(inside), rel_tol=1e-9, abs_tol=1e-6), trial
