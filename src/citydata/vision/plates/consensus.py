"""A vote over several frames' reads of the same vehicle.

Reads are grouped by plate text up to look-alike characters (``plate_distance`` 0); the group with the highest
summed confidence wins. Inside it, each character position is voted on by confidence among the reads of the
winning length, and the province is the confidence-weighted favourite of the reads that have one. The result's
confidence is the winning group's share of the total confidence times its mean confidence, so two frames that
disagree give a lower confidence than two that agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from citydata.vision.plates.base import PlateRead
from citydata.vision.plates.text import normalise_plate, plate_distance


def consensus(reads: Sequence[PlateRead]) -> PlateRead | None:
    """The agreed plate over frames of one vehicle, or None when there is no non-empty read."""
    reads = [r for r in reads if normalise_plate(r.text)]
    if not reads:
        return None
    groups: list[list[PlateRead]] = []
    for r in sorted(reads, key=lambda r: -r.confidence):
        for g in groups:
            if plate_distance(g[0].text, r.text) == 0:
                g.append(r)
                break
        else:
            groups.append([r])
    weight = [sum(max(r.confidence, 1e-6) for r in g) for g in groups]
    best_i = max(range(len(groups)), key=lambda i: (weight[i], len(groups[i])))
    group = groups[best_i]

    lengths: dict[int, float] = defaultdict(float)
    for r in group:
        lengths[len(normalise_plate(r.text))] += r.confidence
    length = max(lengths, key=lambda n: lengths[n])
    same_len = [r for r in group if len(normalise_plate(r.text)) == length]
    chars = []
    for i in range(length):
        votes: dict[str, float] = defaultdict(float)
        for r in same_len:
            votes[normalise_plate(r.text)[i]] += r.confidence
        chars.append(max(votes, key=lambda c: votes[c]))

    provinces: dict[str, float] = defaultdict(float)
    for r in group:
        if r.province:
            provinces[r.province] += r.confidence
    province = max(provinces, key=lambda p: provinces[p]) if provinces else None

    mean_conf = weight[best_i] / len(group)
    share = weight[best_i] / sum(weight)
    top = max(group, key=lambda r: r.confidence)
    return PlateRead(bbox=top.bbox, text="".join(chars), province=province,
                     confidence=float(min(1.0, max(0.0, mean_conf * share))))
