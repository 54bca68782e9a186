"""ScriptedLLM: canned replies in order, streamed, cut at stop, recorded; script files in JSON or text."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from vchat.errors import LLMError
from vchat.llm.base import LLM, Message
from vchat.llm.scripted import ScriptedLLM, ScriptedReply

MESSAGES: list[Message] = [{"role": "user", "content": "hi"}]


def test_plays_replies_in_order_in_a_few_chunks() -> None:
    llm = ScriptedLLM(["first reply, a bit longer", "second"])
    chunks = list(llm.complete(MESSAGES))
    assert "".join(chunks) == "first reply, a bit longer"
    assert 1 < len(chunks) <= 4
    assert "".join(llm.complete(MESSAGES)) == "second"
    assert llm.remaining == 0


def test_is_an_llm() -> None:
    llm: LLM = ScriptedLLM(["x"])
    assert llm.name == "scripted"


def test_records_calls_and_stops() -> None:
    llm = ScriptedLLM(["a", "b"])
    list(llm.complete(MESSAGES, ["\nObservation:"]))
    second: list[Message] = [*MESSAGES, {"role": "assistant", "content": "a"}]
    list(llm.complete(second))
    assert llm.calls == [MESSAGES, second]
    assert llm.stops == [["\nObservation:"], None]
    # A copy: the caller mutating its list afterwards does not rewrite history.
    second.append({"role": "user", "content": "more"})
    assert len(llm.calls[1]) == 2


def test_honours_stop() -> None:
    llm = ScriptedLLM(["Thought: yes\nAction: caption\nObservation: invented"])
    assert "".join(llm.complete(MESSAGES, ["\nObservation:"])) == "Thought: yes\nAction: caption"


def test_exhausted() -> None:
    llm = ScriptedLLM(["only"])
    list(llm.complete(MESSAGES))
    with pytest.raises(LLMError, match=r"^scripted backend has no more replies \(1 used\)$"):
        list(llm.complete(MESSAGES))


def test_error_item_raises() -> None:
    llm = ScriptedLLM([ScriptedReply(error="backend fell over"), "after"])
    with pytest.raises(LLMError, match="backend fell over"):
        list(llm.complete(MESSAGES))
    assert "".join(llm.complete(MESSAGES)) == "after"


def test_delays() -> None:
    llm = ScriptedLLM([ScriptedReply(reply="abcdefgh", delay=0.05, chunk_delay=0.02)])
    start = time.monotonic()
    chunks = list(llm.complete(MESSAGES))
    assert time.monotonic() - start >= 0.05 + 0.02 * (len(chunks) - 1)


def test_empty_reply() -> None:
    assert list(ScriptedLLM([""]).complete(MESSAGES)) == []


def test_from_json_file(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    items = ["plain", {"reply": "timed", "delay": 0, "chunk_delay": 0.001}, {"error": "boom"}]
    path.write_text(json.dumps(items), encoding="utf-8")
    llm = ScriptedLLM.from_file(path)
    assert llm.name == "scripted:script.json"
    assert "".join(llm.complete(MESSAGES)) == "plain"
    assert "".join(llm.complete(MESSAGES)) == "timed"
    with pytest.raises(LLMError, match=r"^boom$"):
        list(llm.complete(MESSAGES))


def test_from_text_file(tmp_path: Path) -> None:
    path = tmp_path / "script.txt"
    path.write_text(
        "Thought: Do I need to use a tool? Yes\nAction: canny_edges\nAction Input: img1\n---\n"
        "Thought: Do I need to use a tool? No\nAI: Done --- img2.\n---\n",
        encoding="utf-8",
    )
    llm = ScriptedLLM.from_file(path)
    assert len(llm.replies) == 2
    assert (
        "".join(llm.complete(MESSAGES))
        == "Thought: Do I need to use a tool? Yes\nAction: canny_edges\nAction Input: img1"
    )
    # `---` inside a line is text, not a separator.
    assert "".join(llm.complete(MESSAGES)) == "Thought: Do I need to use a tool? No\nAI: Done --- img2."


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1, 2", "is not valid JSON (line 1"),
        ('["ok", 3]', "item 1 must be a string or an object, not int"),
        ('[{"text": "x"}]', "item 0 has unknown key 'text'"),
        ('[{"delay": 1}]', "item 0 needs a 'reply' or an 'error'"),
        ('[{"reply": "x", "delay": -1}]', "item 0: 'delay' must be a number of seconds >= 0"),
        ('[{"reply": "x", "chunk_delay": "fast"}]', "'chunk_delay' must be a number"),
        ('[{"reply": 5}]', "'reply' and 'error' must be strings"),
        ("[]", "holds no replies"),
        ("\n---\n\n", "holds no replies"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LLMError) as info:
        ScriptedLLM.from_file(path)
    message = str(info.value)
    assert str(path) in message
    assert problem in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match=r"scripted backend: .*nope\.json does not exist"):
        ScriptedLLM.from_file(tmp_path / "nope.json")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(LLMError, match="cannot read"):
        ScriptedLLM.from_file(path)
    with pytest.raises(LLMError, match="cannot read"):
        ScriptedLLM.from_file(tmp_path)  # a folder


def test_the_llm_base_class_says_cannot_by_default() -> None:
    """A backend that declares nothing more than `name` and `complete` answers every capability question."""
    from vchat.errors import LLMError, ToolsUnsupported
    from vchat.llm.base import LLM

    class Plain(LLM):
        name = "plain"

    plain = Plain()
    assert not plain.supports_tools and not plain.supports_vision and not plain.vision_refused
    assert plain.last_finish is None and plain.last_usage is None and plain.max_tokens is None
    assert plain.notice() is None and plain.base_url is None
    plain.bind_runtime(lambda: None, lambda: False)  # nothing to share: a no-op, not an error
    with pytest.raises(ToolsUnsupported, match="plain has no native tool calling"):
        next(iter(plain.complete_with_tools([], [])))
    with pytest.raises(LLMError, match="plain cannot list models"):
        plain.list_models()
