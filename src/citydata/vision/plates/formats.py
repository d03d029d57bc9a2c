"""Regional plate formats, and CTC decoding constrained to them.

A Latin-script recogniser outputs, for each horizontal step of the crop, a probability for every character and for
the CTC blank. Greedy decoding takes the most likely character at each step, so a plate whose ``O`` looks a little
more like a ``0`` is read ``RK550A0``. Plates follow national formats (Slovakia ``LL NNN LL``, Malaysia
``LLL NNNN``...), so, like mature ALPR engines (OpenALPR's per-country patterns), the reader searches for the most
probable reading that fits one of the formats configured for the deployment, and keeps it when it is not much less
probable than the unconstrained reading. Plates that fit no format (vanity plates, foreign cars) keep the greedy
reading.

A format is a string of character classes, one per position: ``L`` a letter, ``N`` a digit, ``A`` either. The
regions and their formats are in :mod:`citydata.vision.plate_regions`.

The search is a Viterbi pass over the CTC lattice with the template's class at each output position: states are
(characters emitted, the last step's symbol), so repeated characters need a blank between them, as in CTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from citydata.vision.plate_regions import REGION_GROUPS, REGIONS, region_formats, thai_enabled
from citydata.vision.plates.text import confusable

__all__ = ["LATIN", "REGIONS", "REGION_GROUPS", "Decoded", "constrained", "decode", "greedy", "lattice",
           "region_formats", "thai_enabled"]

LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"  # column k + 1 of a lattice; column 0 is the blank
_LETTER = np.array([c.isalpha() for c in LATIN])
_DIGIT = ~_LETTER
_CLASS = {"L": _LETTER, "N": _DIGIT, "A": np.ones(len(LATIN), dtype=bool)}


@dataclass(frozen=True)
class Decoded:
    text: str
    log_prob: float  # of the best CTC path
    confidence: float  # mean probability of the steps that emitted each character


def _conf(probs: np.ndarray, steps: list[tuple[int, int]]) -> float:
    return float(np.mean([probs[t, k] for t, k in steps])) if steps else 0.0


def greedy(probs: np.ndarray) -> Decoded:
    """Best-path decoding of a (T, 1 + len(LATIN)) lattice of probabilities."""
    best = probs.argmax(axis=1)
    chars: list[str] = []
    steps: list[tuple[int, int]] = []
    prev = 0
    for t, k in enumerate(best):
        if k != 0 and k != prev:
            chars.append(LATIN[k - 1])
            steps.append((t, int(k)))
        prev = int(k)
    logp = float(np.log(np.maximum(probs[np.arange(len(best)), best], 1e-12)).sum())
    return Decoded("".join(chars), logp, _conf(probs, steps))


def constrained(probs: np.ndarray, fmt: str) -> Decoded | None:
    """The most probable CTC path whose collapsed text fits ``fmt``; None if the crop is too short for it."""
    n_steps, k_len = probs.shape[0], len(fmt)
    if n_steps < k_len:
        return None
    logp = np.log(np.maximum(probs, 1e-12))
    masks = [_CLASS[c] for c in fmt]
    n_sym = len(LATIN)
    neg = -math.inf
    # blank[k]: k characters emitted, this step blank; char[k, c]: k emitted, this step shows character c (the k-th)
    blank = np.full(k_len + 1, neg)
    char = np.full((k_len + 1, n_sym), neg)
    blank[0] = logp[0, 0]
    char[1, masks[0]] = logp[0, 1:][masks[0]]
    back_blank = np.zeros((n_steps, k_len + 1), dtype=np.int16)  # -1: from blank, c >= 0: from char c
    back_char = np.zeros((n_steps, k_len + 1, n_sym), dtype=np.int16)  # -2: same char, -1: blank, c: char c
    for t in range(1, n_steps):
        lp_b, lp_c = logp[t, 0], logp[t, 1:]
        nb = np.full(k_len + 1, neg)
        nc = np.full((k_len + 1, n_sym), neg)
        best_c = char.argmax(axis=1)
        best_c_val = char[np.arange(k_len + 1), best_c]
        from_char = best_c_val > blank
        nb[:] = np.where(from_char, best_c_val, blank) + lp_b
        back_blank[t] = np.where(from_char, best_c, -1)
        # stay on the same character
        nc[:] = char + lp_c
        back_char[t] = -2
        # emit a new character: from blank at k-1, or from another character at k-1
        for k in range(1, k_len + 1):
            prev_blank = blank[k - 1]
            prev_char = char[k - 1]
            order = np.argsort(prev_char)[::-1][:2]
            top, second = order[0], order[1]
            best_other = np.where(np.arange(n_sym) == top, prev_char[second], prev_char[top])
            best_other_idx = np.where(np.arange(n_sym) == top, second, top)
            src = np.where(best_other > prev_blank, best_other, prev_blank)
            src_idx = np.where(best_other > prev_blank, best_other_idx, -1)
            cand = np.where(masks[k - 1], src + lp_c, neg)
            better = cand > nc[k]
            nc[k] = np.where(better, cand, nc[k])
            back_char[t, k] = np.where(better, src_idx, back_char[t, k])
        blank, char = nb, nc
    end_c = int(char[k_len].argmax())
    if max(blank[k_len], char[k_len, end_c]) == neg:
        return None
    # backtrack
    state_k, state_c = k_len, (end_c if char[k_len, end_c] > blank[k_len] else -1)
    total = float(max(blank[k_len], char[k_len, end_c]))
    emitted: list[tuple[int, int]] = []
    for t in range(n_steps - 1, 0, -1):
        if state_c == -1:
            prev = int(back_blank[t, state_k])
            state_c = prev
            continue
        prev = int(back_char[t, state_k, state_c])
        if prev == -2:
            continue
        emitted.append((t, state_c + 1))
        state_k -= 1
        state_c = prev
    if state_c >= 0:
        emitted.append((0, state_c + 1))
    emitted.reverse()
    text = "".join(LATIN[k - 1] for _, k in emitted)
    if len(text) != k_len:  # pragma: no cover - the lattice guarantees it; kept as a guard
        return None
    return Decoded(text, total, _conf(probs, emitted))


def _look_alike_only(a: str, b: str) -> bool:
    return len(a) == len(b) and all(confusable(x, y) for x, y in zip(a, b, strict=True))


def decode(probs: np.ndarray, formats: tuple[str, ...], *, margin: float = 6.0,
           edit_margin: float = 2.5) -> Decoded:
    """The most probable reading that fits one of ``formats``, if acceptable; otherwise the greedy reading.

    A fitting reading is acceptable when it differs from the greedy one only by look-alike characters (0/O, 1/I,
    8/B...) and its path is at most ``margin`` nats less probable, or when it adds or drops characters (a weakly
    read country-band letter, an inspection sticker read as a character) and its path is at most ``edit_margin``
    nats less probable. Measured on the labelled photos (docs/models.md): look-alike fixes cost 0.3-4.5 nats;
    dropping a weak extra character 0.1-1.5; dropping a clearly read one 4-9, which the smaller margin refuses.
    """
    best_free = greedy(probs)
    best: Decoded | None = None
    for fmt in formats:
        if len(fmt) > probs.shape[0]:
            continue
        d = constrained(probs, fmt)
        if d is None or (best is not None and d.log_prob <= best.log_prob):
            continue
        cost = best_free.log_prob - d.log_prob
        if d.text == best_free.text or (cost <= margin and _look_alike_only(d.text, best_free.text)) \
                or (len(d.text) != len(best_free.text) and cost <= edit_margin):
            best = d
    return best if best is not None else best_free


def lattice(probs: np.ndarray, characters: list[str]) -> np.ndarray:
    """Fold a recogniser's (T, C) output over its own character list into a (T, 1 + len(LATIN)) lattice: lower
    case adds to upper case, and every other symbol (dashes, dots, other scripts) counts as a blank, since
    normalisation drops it."""
    out = np.zeros((probs.shape[0], 1 + len(LATIN)), dtype=np.float64)
    index = {c: i for i, c in enumerate(LATIN)}
    cols: list[int] = []
    for ch in characters:
        k = index.get(ch.upper()) if len(ch) == 1 and ch.isascii() else None
        cols.append(0 if k is None else k + 1)
    np.add.at(out.T, np.array(cols), probs.T.astype(np.float64))
    return out
