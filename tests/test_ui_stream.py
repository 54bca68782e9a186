from __future__ import annotations

import pytest

from vchat.ui.stream import AnswerStreamer


def _stream(text: str, size: int) -> tuple[str, AnswerStreamer]:
    streamer = AnswerStreamer()
    shown = "".join(streamer.feed(text[i : i + size]) for i in range(0, len(text), size))
    return shown, streamer


@pytest.mark.parametrize("size", [1, 3, 50])
def test_only_the_answer_is_streamed(size: int) -> None:
    reply = "Thought: Do I need to use a tool? No\nAI: Here is img3, the winter version of your photo, as asked."
    shown, streamer = _stream(reply, size)
    assert streamer.active
    assert "Thought" not in shown
    assert "Here is img3, the winter version of your photo, as asked.".startswith(shown)
    assert len(shown) >= len("Here is img3, the winter version") - 1


def test_tool_calls_stream_nothing() -> None:
    shown, streamer = _stream("Thought: yes\nAction: canny_edges\nAction Input: img1\nAI: fake", 4)
    assert shown == ""
    assert not streamer.active


def test_final_answer_marker_and_chat_tokens() -> None:
    shown, _ = _stream("**Final Answer:** the door is red, clearly red, without any doubt at all<|im_end|>", 2)
    assert shown.startswith("the door is red")
    assert "<|" not in shown


@pytest.mark.parametrize(
    "reply",
    [
        "Thought: Do I need to use a tool? No\nAI: Here is the edge map of the image you attached and it is ready.",
        "Thought: Do I need to use a tool? No\nAI:   a  few   doubled  spaces   stay   as   the   model   wrote  ",
        "Thought: Do I need to use a tool? No\n**AI:** the door is red, clearly red, without any doubt at all",
        "Thought: Do I need to use a tool? No\nAI: line one of the answer\n\nline two of the answer, after a gap",
    ],
)
def test_streamed_part_and_remainder_are_exactly_the_answer(reply: str) -> None:
    """Every way the reply can be cut into chunks: what is streamed, then the remainder, is the answer."""
    from vchat.react import FinalAnswer, parse_reply

    final = parse_reply(reply)
    assert isinstance(final, FinalAnswer)
    for size in range(1, len(reply) + 1):
        shown, streamer = _stream(reply, size)
        assert shown + streamer.remainder(final.text) == final.text, f"chunk size {size}"


def test_remainder_when_nothing_was_streamed_is_the_whole_answer() -> None:
    streamer = AnswerStreamer()
    streamer.feed("Thought: Do I need to use a tool? No\nAI: short")
    assert streamer.remainder("short") == "short"
