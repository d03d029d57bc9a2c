"""Plate formats: decoding a CTC lattice to the most probable reading that fits a regional format."""

from __future__ import annotations

import numpy as np
import pytest

from citydata.config import load_settings
from citydata.errors import ConfigError
from citydata.vision.plates.formats import LATIN, constrained, decode, greedy, lattice, region_formats

BLANK = 0


def col(ch: str) -> int:
    return LATIN.index(ch) + 1


def make_lattice(steps: list[dict[str, float]]) -> np.ndarray:
    """One row per step: the given probabilities, the rest spread on the blank."""
    out = np.full((len(steps), 1 + len(LATIN)), 1e-6)
    for t, probs in enumerate(steps):
        for ch, p in probs.items():
            out[t, BLANK if ch == "-" else col(ch)] = p
        out[t, BLANK] += max(0.0, 1.0 - out[t].sum())
    return out


SURE = 0.9995  # a clearly read character: dropping it costs log(1 - SURE), about 7.6 nats


def spelled(text: str, *, ambiguous: dict[int, dict[str, float]] | None = None) -> np.ndarray:
    """A clean lattice for ``text`` (each character on one step, a blank between), with some positions ambiguous."""
    steps: list[dict[str, float]] = []
    for i, ch in enumerate(text):
        steps.append((ambiguous or {}).get(i, {ch: SURE}))
        steps.append({"-": SURE})
    return make_lattice(steps)


def test_greedy_reads_the_most_likely_character_at_each_step() -> None:
    probs = spelled("RK550AO", ambiguous={6: {"0": 0.55, "O": 0.43}})
    assert greedy(probs).text == "RK550A0"


def test_a_letter_position_turns_a_look_alike_digit_into_the_letter() -> None:
    probs = spelled("RK550AO", ambiguous={6: {"0": 0.55, "O": 0.43}})
    assert decode(probs, region_formats(["sk"])).text == "RK550AO"
    assert decode(probs, ()).text == "RK550A0"  # no format configured: the greedy reading


def test_digit_positions_turn_look_alike_letters_into_digits() -> None:
    probs = spelled("BA268IM", ambiguous={4: {"B": 0.6, "8": 0.38}, 5: {"1": 0.7, "I": 0.28}})
    assert greedy(probs).text == "BA26B1M"
    assert decode(probs, region_formats(["sk"])).text == "BA268IM"


def test_repeated_characters_need_a_blank_between_them() -> None:
    # "AA" on two consecutive steps with no blank collapses to one A; the format needs two letters, so the
    # best path must place a blank or another letter between them
    probs = make_lattice([{"A": 0.97}, {"A": 0.97}, {"-": 0.97}, {"1": 0.97}, {"-": 0.97}])
    assert greedy(probs).text == "A1"
    d = constrained(probs, "LLN")
    assert d is not None and len(d.text) == 3 and d.text[2] == "1"
    assert d.log_prob < greedy(probs).log_prob


def test_a_format_that_needs_a_confident_character_dropped_is_not_taken() -> None:
    # WA56660 (a Polish plate) fits no configured format; the German LLNNNN would need a clear 0 dropped
    probs = spelled("WA56660")
    assert decode(probs, region_formats(["de"])).text == "WA56660"


def test_an_extra_weak_character_can_be_dropped_to_fit() -> None:
    # the country band's letter, read weakly before a Slovak plate
    probs = spelled("ERK346AL", ambiguous={0: {"E": 0.6}})
    assert greedy(probs).text == "ERK346AL"
    assert decode(probs, region_formats(["sk"])).text == "RK346AL"


def test_confidence_is_the_mean_probability_of_the_emitting_steps() -> None:
    probs = spelled("AB12", ambiguous={0: {"A": 0.5}})
    got = decode(probs, ())
    assert got.confidence == pytest.approx((0.5 + SURE * 3) / 4, abs=1e-3)


def test_a_crop_shorter_than_the_format_fits_nothing() -> None:
    assert constrained(spelled("AB"), "LLNNNLL") is None


def test_lattice_folds_case_and_drops_other_symbols_into_the_blank() -> None:
    characters = ["blank", "a", "A", "-", "0", "中", " "]
    probs = np.array([[0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1]])
    lat = lattice(probs, characters)
    assert lat.shape == (1, 1 + len(LATIN))
    assert lat[0, col("A")] == pytest.approx(0.5)
    assert lat[0, col("0")] == pytest.approx(0.1)
    assert lat[0, BLANK] == pytest.approx(0.1 + 0.1 + 0.1 + 0.1)
    assert lat.sum() == pytest.approx(1.0)


def test_region_names() -> None:
    assert "LLNNNLL" in region_formats(["eu"])
    assert region_formats(["th"]) == ()
    assert "LLLNNNN" in region_formats(["my"])
    with pytest.raises(ValueError, match="unknown plate region 'xx'"):
        region_formats(["xx"])


def test_settings_take_regions_comma_separated_and_refuse_unknown_ones() -> None:
    s = load_settings(environ={"CITYDATA_VISION_PLATE_REGIONS": "th, EU"})
    assert s.vision_plate_regions == ["th", "eu"]
    assert load_settings(environ={}).vision_plate_regions == ["th", "my"]
    with pytest.raises(ConfigError, match=r"(?i)vision_plate_regions.*unknown plate region 'zz'"):
        load_settings(environ={"CITYDATA_VISION_PLATE_REGIONS": "th,zz"})
