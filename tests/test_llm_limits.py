"""A misbehaving model or server cannot hang vchat or lose a turn: limits, deadline, odd text.

Over real HTTP against tests/fake_openai.py: max_tokens is sent, an endless stream is cut, a
stream that only keeps the link alive hits the deadline, surrogate pairs split across chunks
are joined, and each failure is one line with the session still usable afterwards.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.fake_openai import FakeOpenAI, Fault, Reply
from tests.helpers import act, answer, make_session, write_photo
from tests.test_cli import vchat

from vchat.errors import LLMError
from vchat.llm.base import Message
from vchat.llm.openai_backend import OpenAIChat
from vchat.llm.scripted import ScriptedLLM
from vchat.store.transcript import read_records

MESSAGES: list[Message] = [{"role": "user", "content": "Hello"}]


def make(server: FakeOpenAI, **kwargs: Any) -> OpenAIChat:
    options: dict[str, Any] = {"base_url": server.url, "timeout": 5.0, "max_retries": 0}
    options.update(kwargs)
    return OpenAIChat("m", **options)


def failure(llm: OpenAIChat) -> LLMError:
    with pytest.raises(LLMError) as info:
        list(llm.complete(MESSAGES))
    assert "\n" not in str(info.value)
    return info.value


# -- defect 2: a runaway reply ends ----------------------------------------------------------------


@pytest.mark.slow
def test_max_tokens_is_sent_from_the_settings(tmp_path: Path) -> None:
    with FakeOpenAI([answer("short")]) as server:
        out = vchat(tmp_path, "run", "hi", "--base-url", server.url, "-m", "m", VCHAT_MAX_TOKENS="200")
        assert out.returncode == 0, out.stderr
        assert server.chat_requests[0].body["max_tokens"] == 200


def test_a_model_that_refuses_max_tokens_gets_max_completion_tokens() -> None:
    refusal = Fault.status_error(
        400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens'."
    )
    with FakeOpenAI([refusal, "fine"]) as server:
        assert "".join(make(server, max_tokens=300).complete(MESSAGES)) == "fine"
        second = server.chat_requests[1].body
    assert "max_tokens" not in second and second["max_completion_tokens"] == 300


@pytest.mark.parametrize("stream", [True, False])
def test_an_endless_reply_is_cut_at_the_size_cap(stream: bool) -> None:
    with FakeOpenAI([Fault.endless("la " * 50)] if stream else [Reply("la " * 40_000)]) as server:
        started = time.monotonic()
        err = failure(make(server, stream=stream, max_tokens=256))
    assert "ran past 4096 chars" in str(err) and "max_tokens=256" in str(err)
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_endless_stream_in_vchat_run_is_one_line_and_exits(tmp_path: Path) -> None:
    with FakeOpenAI([Fault.endless("na ", chunk_delay=0.001)]) as server:
        out = vchat(tmp_path, "run", "hi", "--json", "--base-url", server.url, "-m", "m", VCHAT_MAX_TOKENS="64")
    assert out.returncode == 1
    data = json.loads(out.stdout)
    # The first request failed and nothing was made: no session is left behind.
    assert "ran past" in data["error"] and data["session"] is None
    assert not (tmp_path / "out").is_dir() or not any((tmp_path / "out").iterdir())
    assert [line for line in out.stderr.splitlines() if line.startswith("error:")] == [f"error: {data['error']}"]


def test_a_stream_that_only_keeps_the_link_alive_ends_at_the_deadline() -> None:
    with FakeOpenAI([Fault.keepalive(0.05)]) as server:
        started = time.monotonic()
        err = failure(make(server, reply_deadline=1.0))
    assert time.monotonic() - started < 4
    assert "within 1s" in str(err) and "reply_deadline" in str(err)
    # The worker reading the stream hangs up too: no thread (and connection) is left behind per deadline.
    until = time.monotonic() + 5
    while any(t.name == "vchat-llm" for t in threading.enumerate()) and time.monotonic() < until:
        time.sleep(0.05)
    assert not any(t.name == "vchat-llm" for t in threading.enumerate())


def test_a_slow_trickle_ends_at_the_deadline_and_says_how_far_it_got() -> None:
    with FakeOpenAI([Reply("x" * 400, chunk_size=1, chunk_delay=0.02)]) as server:
        err = failure(make(server, reply_deadline=1.0))
    assert "within 1s" in str(err) and "chars had arrived" in str(err)


def test_after_a_deadline_the_session_goes_on(tmp_path: Path) -> None:
    with FakeOpenAI([Fault.keepalive(0.05), answer("still here")]) as server:
        session = make_session(tmp_path)
        session.llm = make(server, reply_deadline=1.0)
        broken = list(session.turn("hello"))
        after = list(session.turn("again"))
    assert broken[-1].kind == "error" and "reply_deadline" in broken[-1].text
    assert after[-1].text == "still here"


@pytest.mark.slow
def test_a_timeout_with_retries_says_how_long_it_really_waited() -> None:
    with FakeOpenAI([Fault.delay(5), Fault.delay(5), Fault.delay(5)]) as server:
        err = failure(make(server, timeout=0.3, max_retries=2))
    assert "3 attempts of up to 0.3s each" in str(err)


# -- defect 4: surrogates --------------------------------------------------------------------------


def test_a_surrogate_pair_split_across_chunks_is_joined(tmp_path: Path) -> None:
    # chunk_size=2 on "AI: 😀" written as UTF-16 halves: the pair lands in two SSE events, each a lone half.
    text = "Thought: Do I need to use a tool? No\nAI: smile \ud83d\ude00 and \ud800 alone"
    with FakeOpenAI([Reply(text, chunk_size=len(text) - 15)]) as server:
        session = make_session(tmp_path)
        session.llm = make(server)
        steps = list(session.turn("smile"))
    assert steps[-1].kind == "final" and steps[-1].text == "smile 😀 and \ufffd alone"
    records, warning = read_records(session.transcript.path)
    assert warning is None and records[-1]["text"] == "smile 😀 and \ufffd alone"


def test_lone_surrogates_from_any_backend_never_crash_the_transcript(tmp_path: Path) -> None:
    session = make_session(tmp_path, [answer("broken \udc00 emoji")])
    steps = list(session.turn("hi \ud800"))
    assert steps[-1].kind == "final"
    records, warning = read_records(session.transcript.path)
    assert warning is None and records[-1]["text"] == "broken \udc00 emoji"


# -- defect 3: a NUL in an Action Input ------------------------------------------------------------


@pytest.mark.slow
def test_nul_in_action_input_is_an_observation_not_a_crash(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    replies = [act("canny_edges", '{"image": "img1\\u0000"}'), act("canny_edges", "/tmp/x\x00.png"), answer("ok")]
    with FakeOpenAI(replies) as server:
        out = vchat(tmp_path, "run", "edges", "-i", str(photo), "--json", "--base-url", server.url, "-m", "m")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["final"] == "ok"
    observations = [s["observation"] for s in data["steps"] if s["kind"] == "observation"]
    assert len(observations) == 2 and all("bad input for canny_edges" in o for o in observations)


# -- smaller ones ------------------------------------------------------------------------------------


def test_a_200_without_a_chat_reply_is_not_called_a_cut_after_0_chars() -> None:
    with FakeOpenAI([Fault.status_body(200, "<html>login page</html>", "text/html")]) as server:
        err = failure(make(server))
    assert "after 0 chars" not in str(err) and "no completion chunks" in str(err)


def test_unreadable_replies_error_is_one_short_line(tmp_path: Path) -> None:
    session = make_session(tmp_path, ["Thought: Do I need to use a tool? Yes"] * 3)
    steps = list(session.turn("hi"))
    assert steps[-1].kind == "error" and steps[-1].reason == "unreadable"
    assert "\n" not in steps[-1].text and len(steps[-1].text) < 200, steps[-1].text


def test_a_huge_action_input_is_not_echoed_whole_to_the_model(tmp_path: Path) -> None:
    session = make_session(tmp_path, [act("canny_edges", "x" * 1_000_000), answer("ok")])
    session.attach(write_photo(tmp_path))
    steps = list(session.turn("edges"))
    assert steps[-1].text == "ok"
    assert isinstance(session.llm, ScriptedLLM)
    observation = str(session.llm.calls[1][-1]["content"])
    assert observation.startswith("Observation: bad input") and len(observation) < 5000


def test_native_tool_calls_are_bounded_too() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    with FakeOpenAI([Fault.keepalive(0.05), Fault.endless("la " * 50)]) as server:
        llm = make(server, reply_deadline=1.0, max_tokens=256)
        with pytest.raises(LLMError, match="reply_deadline"):
            list(llm.complete_with_tools(MESSAGES, tools))
        with pytest.raises(LLMError, match="ran past 4096 chars"):
            list(llm.complete_with_tools(MESSAGES, tools))
