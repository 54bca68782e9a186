"""`/tool NAME ARGS` as typed by hand: positional values, KEY=VALUE pairs, quotes, errors that say how."""

from __future__ import annotations

import pytest

from vchat.chat.tool_args import is_legacy, parse_tool_args, usage
from vchat.errors import ToolInputError
from vchat.tools.base import Tool
from vchat.tools.registry import TOOL_CLASSES

TOOLS: dict[str, type[Tool]] = {tool.name: tool for tool in TOOL_CLASSES}


@pytest.mark.parametrize(
    ("tool", "raw", "expected"),
    [
        ("canny_edges", "img1 low=50", {"image": "img1", "low": "50"}),
        ("canny_edges", "img1 50 120", {"image": "img1", "low": "50", "high": "120"}),
        ("canny_edges", "high=200 img1", {"image": "img1", "high": "200"}),
        ("canny_edges", 'image=img1 low="7"', {"image": "img1", "low": "7"}),
        ("flip_image", "img1 vertical", {"image": "img1", "direction": "vertical"}),
        ("crop_image", "img1 1 2 30 40", {"image": "img1", "left": "1", "top": "2", "right": "30", "bottom": "40"}),
        # A prompt needs no quotes; its commas and apostrophes stay as typed.
        ("generate_image", "a red car, at night width=256", {"prompt": "a red car, at night", "width": "256"}),
        ("answer_question", "img1 what's on the table?", {"image": "img1", "question": "what's on the table?"}),
        # Two text fields: the first takes one word unless quoted, the last takes the rest.
        (
            "replace_object",
            "img1 car a red bicycle",
            {"image": "img1", "object": "car", "replacement": "a red bicycle"},
        ),
        (
            "replace_object",
            "img1 'old car' a bicycle",
            {"image": "img1", "object": "old car", "replacement": "a bicycle"},
        ),
        ("replace_object", 'img1 object="old car" bike', {"image": "img1", "object": "old car", "replacement": "bike"}),
        ("instruct_edit", "img1 'text=with equals'", {"image": "img1", "instruction": "text=with equals"}),
        ("canny_edges", "", {}),
    ],
)
def test_parse(tool: str, raw: str, expected: dict[str, str]) -> None:
    assert parse_tool_args(TOOLS[tool], raw) == expected


@pytest.mark.parametrize(
    ("tool", "raw", "message"),
    [
        (
            "canny_edges",
            "img1 lwo=5",
            r"canny_edges has no input 'lwo' \(inputs: image, low, high\); /tool canny_edges IMAGE",
        ),
        ("canny_edges", "img1 5 6 7", r"no input left for '7'; /tool canny_edges IMAGE \[low=INT\] \[high=INT\]"),
        ("canny_edges", "img1 low=5 low=6", "low is given twice"),
        ("instruct_edit", 'img1 "make it snow', "quote is not closed"),
    ],
)
def test_errors_say_what_to_type(tool: str, raw: str, message: str) -> None:
    with pytest.raises(ToolInputError, match=message):
        parse_tool_args(TOOLS[tool], raw)


def test_usage_and_legacy_forms() -> None:
    assert usage(TOOLS["flip_image"]) == "/tool flip_image IMAGE [direction=horizontal|vertical]"
    assert is_legacy('{"image": "img1"}')
    assert is_legacy("img1, 50")
    assert not is_legacy("img1 low=50")
    assert not is_legacy("a red car, at night")
