"""Plate formats by region, for the Latin plate reading (``citydata.vision.plates.formats``) and the settings.

A format is a string of character classes, one per position: ``L`` a letter, ``N`` a digit, ``A`` either. A region
is a named list of formats; ``th`` is special: it turns on the Thai two-line reader (the CRNN), which has its own
pattern and province head, and adds no Latin format. This module imports nothing heavy, so the settings can check
region names when they load.
"""

from __future__ import annotations


def _expand(letters: range, digits: range, suffix: str = "") -> tuple[str, ...]:
    return tuple("L" * a + "N" * b + suffix for a in letters for b in digits)


# Formats per region. Sources: the national registration rules (current series only; older series, diplomatic,
# military and personalised plates are left to the unconstrained reading).
REGIONS: dict[str, tuple[str, ...]] = {
    "th": (),  # Thai two-line plates: read by the Thai recogniser (CRNN) with its own pattern and province head
    # Malaysia: 1-3 letters (state and series), 1-4 digits, an optional letter suffix
    "my": _expand(range(1, 4), range(1, 5)) + _expand(range(1, 4), range(1, 5), "L"),
    "sk": ("LLNNNLL",),  # Slovakia: district, 3 digits, 2 letters (BA-123AB)
    "cz": ("NLANNNN",),  # Czechia: region digit, region letter, letter or digit, 4 digits (1AB 2345)
    "uk": ("LLNNLLL",),  # Great Britain since 2001: area, age, 3 letters (AB12 CDE)
    # Germany: district (1-3 letters), 1-2 letters, 1-4 digits, at most 8 in all
    "de": tuple(f for f in _expand(range(2, 6), range(1, 5)) if len(f) <= 8),
}
REGION_GROUPS: dict[str, tuple[str, ...]] = {"eu": ("sk", "cz", "uk", "de")}


def region_formats(regions: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The Latin formats of the named regions or groups (``eu`` = sk, cz, uk, de); unknown names raise."""
    out: list[str] = []
    for name in regions:
        names = REGION_GROUPS.get(name, (name,))
        for n in names:
            if n not in REGIONS:
                known = ", ".join(sorted([*REGIONS, *REGION_GROUPS]))
                raise ValueError(f"unknown plate region {n!r} (known: {known})")
            out.extend(f for f in REGIONS[n] if f not in out)
    return tuple(out)


def thai_enabled(regions: tuple[str, ...] | list[str]) -> bool:
    return "th" in regions
