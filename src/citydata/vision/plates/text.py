"""Plate text: normalisation, the Thai and Latin plate patterns, and a confusable-tolerant distance.

``plate_distance`` is an edit distance in which a substitution between look-alike characters costs nothing:
Thai consonants that OCR mixes up (ฌ/ณ, ฬ/พ, ฏ/ฎ, ...) and Latin ones (0/O/D/Q, 1/I/L, 8/B, 5/S, 2/Z ...). So a
hotlist match "within one character" can tolerate one real error on top of any number of look-alikes.
"""

from __future__ import annotations

import re
import unicodedata

_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_THAI_REG = re.compile(r"^[1-9]?[ก-ฮ]{1,2}[1-9][0-9]{0,3}$")
_LATIN_REG = re.compile(r"^(?=.*[0-9])(?=.*[A-Z])[A-Z0-9]{3,9}$")

# Groups of characters that read alike on a plate; every pair inside a group is a tolerated substitution.
CONFUSABLE_GROUPS: tuple[str, ...] = (
    "ฌณ", "ฬพ", "ฏฎ", "ผฝ", "พฟ", "บป", "ดต", "ภถ", "ซช", "ฑฆ", "รธ", "อฮ",
    "0ODQ", "1I", "8B", "5S", "2Z", "6G",
)
_SAME: dict[str, frozenset[str]] = {}
for _group in CONFUSABLE_GROUPS:
    for _c in _group:
        _SAME[_c] = _SAME.get(_c, frozenset()) | frozenset(_group)


def normalise_plate(text: str) -> str:
    """Canonical registration: NFC, Thai digits to Arabic, upper case, no spaces, dashes, dots or marks.

    ``"กข 1234"`` → ``"กข1234"``; ``"rk-755 aj"`` → ``"RK755AJ"``. Thai vowels and tone marks never occur
    in a registration, so they are dropped with the punctuation.
    """
    text = unicodedata.normalize("NFC", text).translate(_THAI_DIGITS).upper()
    return "".join(c for c in text if (c.isdigit() and c.isascii()) or "A" <= c <= "Z" or "ก" <= c <= "ฮ")


def is_thai_registration(text: str) -> bool:
    """Whether a normalised text has the Thai pattern: optional digit, 1-2 consonants, 1-4 digits."""
    return bool(_THAI_REG.match(text))


def is_latin_registration(text: str) -> bool:
    """Whether a normalised text looks like a Latin-script plate: 3-9 letters and digits, both present."""
    return bool(_LATIN_REG.match(text))


def confusable(a: str, b: str) -> bool:
    """Whether two characters are the same or a tolerated look-alike pair."""
    return a == b or b in _SAME.get(a, frozenset())


def plate_distance(a: str, b: str) -> int:
    """Edit distance between two plates after normalisation, where look-alike substitutions cost 0."""
    a, b = normalise_plate(a), normalise_plate(b)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (0 if confusable(ca, cb) else 1)))
        prev = cur
    return prev[-1]
