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
