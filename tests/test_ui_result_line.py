"""A cut tool result keeps its seed: the one thing needed to make the picture again."""

from __future__ import annotations

from vchat.ui.result_line import result_line
from vchat.ui.safe import safe_line

LONG = (
    "Replaced 'the old rusty car parked by the gate' with 'a red bicycle leaning on the wall' in img1 "
    "(mask covers 83% of the image, so most of the picture was repainted; seed 4266540312, 30 steps, guidance 7.5)"
)


def test_a_long_result_is_cut_before_the_seed_not_through_it() -> None:
    assert len(LONG) > 160
    assert "4266540312" not in safe_line(LONG, 160)  # what a plain cut showed
    shown = result_line(LONG, 160)
    assert len(shown) <= 160
    assert shown.endswith("seed 4266540312, 30 steps, guidance 7.5)")
    assert shown.startswith("Replaced 'the old rusty car") and "… " in shown


def test_short_results_and_results_without_a_seed_are_as_before() -> None:
    assert result_line("Canny edges of img1.", 160) == "Canny edges of img1."
    plain = "x" * 200
    assert result_line(plain, 160) == safe_line(plain, 160)


def test_control_characters_are_neutralised_before_cutting() -> None:
    shown = result_line("made \x1b[31mred\x1b[0m " + "y" * 200 + " seed 7", 80)
    assert "\x1b" not in shown and shown.endswith("seed 7")
