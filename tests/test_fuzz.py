"""Property tests: arbitrary model output never crashes the parser or a turn."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import make_session, write_photo

from vchat.errors import ParseError
from vchat.react import FinalAnswer, ToolCall, parse_reply

TOOLS = ("canny_edges", "flip_image", "resize_image", "crop_image", "grayscale_image")
KEYWORDS = st.sampled_from(
    [
        "Thought:",
        "Action:",
        "Action Input:",
        "Observation:",
        "AI:",
        "Final Answer:",
        "**Action**:",
        "<think>",
        "</think>",
        "```json",
        "```",
        '{"action": ',
        '"action_input": ',
        "img1",
        "img2",
        "img99",
        "../../etc/passwd",
        "canny_edges",
        "flip_image",
        "None",
        "\n",
        ", ",
        "{",
        "}",
        '"',
        "Yes",
        "No",
    ]
)
REPLIES = st.lists(st.one_of(KEYWORDS, st.text(max_size=20)), max_size=25).map("".join)


@settings(max_examples=400, deadline=None)
@given(REPLIES)
@pytest.mark.slow
def test_parser_returns_a_meaning_or_parse_error(text: str) -> None:
    try:
        result = parse_reply(text, TOOLS)
    except ParseError as exc:
        assert str(exc)
        return
    assert isinstance(result, (ToolCall, FinalAnswer))
    if isinstance(result, ToolCall):
        assert isinstance(result.input, str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(REPLIES, min_size=1, max_size=6))
@pytest.mark.slow
def test_a_turn_never_crashes_whatever_the_model_says(replies: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        session = make_session(folder, replies, max_steps=3, max_format_retries=2)
        session.attach(write_photo(folder))
        steps = list(session.turn("do something with img1"))
        assert steps, "a turn yields at least one step"
        assert steps[-1].kind in ("final", "error")
        for step in steps:
            for ref in step.images:
                assert ref.path.parent == session.folder
                assert ref.path.is_file()
