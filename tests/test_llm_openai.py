"""OpenAIChat: the real openai client over real HTTP against the fake server in tests/fake_openai.py."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fake_openai import FakeOpenAI, Fault, Reply
from vchat.errors import LLMError
from vchat.llm.base import Message, cut_at_stop
from vchat.llm.openai_backend import LOCAL_PLACEHOLDER_KEY, OpenAIChat
from vchat.llm.openai_text import StopCutter

KEY = "sk-test-SECRET-0123456789abcdef"
MESSAGES: list[Message] = [
    {"role": "system", "content": "You are a test."},
    {"role": "user", "content": "Hello"},
]
STOP = ["\nObservation:"]
REACT = "Thought: Do I need to use a tool? Yes\nAction: caption\nAction Input: img1\nObservation: a cat"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def make(fake: FakeOpenAI, **kwargs: Any) -> OpenAIChat:
    options: dict[str, Any] = {"base_url": fake.url, "api_key": KEY, "timeout": 2.0, "max_retries": 0}
    options.update(kwargs)
    return OpenAIChat(options.pop("model", "fake-model"), **options)


def fail(llm: OpenAIChat, stop: list[str] | None = None) -> tuple[str, LLMError]:
    """Run a completion that must fail: the text that arrived before, and the error."""
    got: list[str] = []
    with pytest.raises(LLMError) as info:
        got.extend(llm.complete(MESSAGES, stop))
    err = info.value
    assert "\n" not in str(err), str(err)
    assert KEY not in str(err) and KEY not in repr(err)
    return "".join(got), err


# -- happy paths ---------------------------------------------------------------------------


def test_streams_the_reply_in_chunks_and_sends_the_request(fake: FakeOpenAI) -> None:
    fake.push("Thought: Do I need to use a tool? No\nAI: Hi there!")
    chunks = list(make(fake).complete(MESSAGES))
    assert "".join(chunks) == "Thought: Do I need to use a tool? No\nAI: Hi there!"
    assert len(chunks) > 3
    request = fake.chat_requests[-1]
    assert request.stream is True
    assert request.messages == MESSAGES
    assert request.body["model"] == "fake-model"
    assert request.body["temperature"] == 0.0
    assert request.stop is None
    assert request.header("Authorization") == f"Bearer {KEY}"


def test_not_streamed(fake: FakeOpenAI) -> None:
    fake.push("one piece")
    assert list(make(fake, stream=False).complete(MESSAGES)) == ["one piece"]
    assert fake.chat_requests[-1].stream is False


def test_empty_reply_yields_nothing(fake: FakeOpenAI) -> None:
    fake.push("", "")
    assert list(make(fake).complete(MESSAGES)) == []
    assert list(make(fake, stream=False).complete(MESSAGES)) == []


@pytest.mark.parametrize("stream", [True, False])
def test_stop_is_sent_and_honoured(fake: FakeOpenAI, stream: bool) -> None:
    fake.push(REACT)
    text = "".join(make(fake, stream=stream).complete(MESSAGES, STOP))
    assert text == REACT.split("\nObservation:")[0]
    assert fake.chat_requests[-1].stop == STOP


def test_a_server_that_ignores_stop_is_cut_client_side(fake: FakeOpenAI) -> None:
    # The fake honours stop, so send a stop it does not see: the reply has it, the request does not.
    llm = make(fake)
    llm._dropped.add("stop")
    fake.push(Reply(REACT, chunk_size=3))
    chunks = list(llm.complete(MESSAGES, STOP))
    assert "".join(chunks) == REACT.split("\nObservation:")[0]
    assert all("Observation" not in c for c in chunks)
    assert fake.chat_requests[-1].stop is None


def test_name_and_repr(fake: FakeOpenAI) -> None:
    llm = make(fake)
    assert llm.name == f"fake-model @ 127.0.0.1:{fake.port}"
    assert KEY not in repr(llm)
    assert "fake-model" in repr(llm)
    remote = OpenAIChat("gpt-4o-mini", api_key=KEY)
    assert remote.name == "gpt-4o-mini @ api.openai.com"
    assert KEY not in repr(remote)
    assert OpenAIChat("llama3.1", base_url="http://localhost:11434/v1").name == "llama3.1 @ localhost:11434"


def test_local_url_needs_no_key(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake.push("hi")
    llm = OpenAIChat("fake-model", base_url=fake.url, max_retries=0)
    assert "".join(llm.complete(MESSAGES)) == "hi"
    assert fake.chat_requests[-1].header("Authorization") == f"Bearer {LOCAL_PLACEHOLDER_KEY}"


def test_remote_url_without_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match=r"no API key for https://example\.com/v1: set OPENAI_API_KEY"):
        OpenAIChat("m", base_url="https://example.com/v1")


def test_list_models() -> None:
    with FakeOpenAI(models=["a", "b"]) as fake:
        assert make(fake).list_models() == ["a", "b"]


# -- refused parameters --------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_refused_stop_is_retried_without_it_and_cut_client_side(stream: bool) -> None:
    with FakeOpenAI([REACT, "second\nObservation: x"], refuse_stop=True) as fake:
        llm = make(fake, stream=stream)
        assert llm.stop_supported
        assert "".join(llm.complete(MESSAGES, STOP)) == REACT.split("\nObservation:")[0]
        assert [r.stop for r in fake.chat_requests] == [STOP, None]
        assert not llm.stop_supported
        # Remembered: the next call does not try `stop` again.
        assert "".join(llm.complete(MESSAGES, STOP)) == "second"
        assert len(fake.chat_requests) == 3
        assert fake.chat_requests[-1].stop is None


def test_refused_stop_as_a_one_off_fault(fake: FakeOpenAI) -> None:
    fake.push(Fault.refuse_stop(), REACT)
    assert "".join(make(fake).complete(MESSAGES, STOP)) == REACT.split("\nObservation:")[0]
    assert [r.stop for r in fake.chat_requests] == [STOP, None]


def test_refused_temperature_is_dropped(fake: FakeOpenAI) -> None:
    fake.push(
        Fault.status_error(400, "Unsupported value: 'temperature' does not support 0.0 with this model."),
        "ok",
        "again",
    )
    llm = make(fake)
    assert "".join(llm.complete(MESSAGES)) == "ok"
    assert "temperature" in fake.chat_requests[0].body
    assert "temperature" not in fake.chat_requests[1].body
    assert "".join(llm.complete(MESSAGES)) == "again"
    assert "temperature" not in fake.chat_requests[2].body


def test_other_bad_requests_are_not_retried(fake: FakeOpenAI) -> None:
    fake.push(Fault.status_error(400, "This model's maximum context length is 8192 tokens.", code="context_length"))
    _, err = fail(make(fake), STOP)
    assert "rejected the request (HTTP 400)" in str(err)
    assert "maximum context length" in str(err)
    assert len(fake.chat_requests) == 1


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_bad_key(fake: FakeOpenAI, stream: bool) -> None:
    fake.push(Fault.unauthorized())
    _, err = fail(make(fake, stream=stream))
    assert str(err) == f"the server at {fake.url} rejected the API key (check OPENAI_API_KEY)"


def test_bad_key_checked_by_the_server() -> None:
    with FakeOpenAI(["never"], api_key="sk-the-right-one") as fake:
        _, err = fail(make(fake))
        assert "rejected the API key" in str(err)


def test_model_not_found_lists_available_models() -> None:
    with FakeOpenAI(models=["qwen2.5", "llama3.1:8b", "phi3"]) as fake:
        _, err = fail(make(fake, model="llama3.1"))
        # Close spellings first.
        assert str(err) == f"model 'llama3.1' not found on {fake.url}; available: llama3.1:8b, qwen2.5, phi3"


def test_model_not_found_bounds_the_list() -> None:
    models = [f"model-{i:02d}" for i in range(30)]
    with FakeOpenAI(models=models) as fake:
        _, err = fail(make(fake, model="gpt-x"))
        assert "available: " in str(err)
        assert "(and 20 more)" in str(err)


def test_model_not_found_fault_without_a_model_list(fake: FakeOpenAI) -> None:
    fake.push(Fault.model_not_found("fake-model"))
    _, err = fail(make(fake))
    assert str(err).startswith(f"model 'fake-model' not found on {fake.url}; available: fake-model")


def test_wrong_base_url_is_not_blamed_on_the_model(fake: FakeOpenAI) -> None:
    _, err = fail(make(fake, base_url=fake.url + "/oops"))
    assert "has no chat completions endpoint (HTTP 404)" in str(err)
    assert "check the base URL" in str(err)


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = OpenAIChat("m", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=2)
    _, err = fail(llm)
    assert str(err) == f"cannot reach http://127.0.0.1:{port}/v1 (is the server running?)"


@pytest.mark.parametrize("stream", [True, False])
def test_timeout_before_the_reply(fake: FakeOpenAI, stream: bool) -> None:
    fake.push(Fault.delay(5))
    _, err = fail(make(fake, timeout=0.3, stream=stream))
    assert f"{fake.url} did not answer within 0.3s" in str(err)
    assert "timeout" in str(err)


def test_stall_mid_stream(fake: FakeOpenAI) -> None:
    fake.push(Reply("abcdefgh", chunk_size=4, chunk_delay=5))
    got, err = fail(make(fake, timeout=0.3))
    assert got == "abcd"
    assert "stopped sending mid-reply" in str(err)
    assert "after 4 chars" in str(err)


def test_rate_limited_then_success(fake: FakeOpenAI) -> None:
    fake.push(Fault.rate_limited(), "made it")
    assert "".join(make(fake, max_retries=2).complete(MESSAGES)) == "made it"
    assert len(fake.chat_requests) == 2


def test_rate_limited_after_retries(fake: FakeOpenAI) -> None:
    fake.push(Fault.rate_limited(), Fault.rate_limited(), Fault.rate_limited(), "too late")
    _, err = fail(make(fake, max_retries=2))
    assert "rate-limiting requests (HTTP 429, still after 2 retries)" in str(err)
    assert len(fake.chat_requests) == 3
    assert fake.pending == 1


def test_quota_exceeded_is_not_called_a_rate_limit(fake: FakeOpenAI) -> None:
    fake.push(Fault.status_error(429, "You exceeded your current quota.", code="insufficient_quota"))
    _, err = fail(make(fake))
    assert "quota exceeded" in str(err)


def test_server_error_then_success(fake: FakeOpenAI) -> None:
    fake.push(Fault.server_error(502), "fine now")
    assert "".join(make(fake, max_retries=1).complete(MESSAGES)) == "fine now"


@pytest.mark.parametrize("stream", [True, False])
def test_server_error(fake: FakeOpenAI, stream: bool) -> None:
    fake.push(Fault.server_error(), Fault.server_error())
    _, err = fail(make(fake, max_retries=1, stream=stream))
    assert str(err).startswith(f"{fake.url} failed with HTTP 500 (after 1 retries): The server had an error")


def test_stream_cut_mid_reply(fake: FakeOpenAI) -> None:
    fake.push(Fault.cut("Thought: Do I need to use a tool? Yes", after=10))
    got, err = fail(make(fake))
    assert got == "Thought: D"
    assert f"the reply from {fake.url} was cut after 10 chars" in str(err)


def test_stream_ending_without_finish_reason_counts_as_cut(fake: FakeOpenAI) -> None:
    fake.push(Reply("partial", finish_reason=None))
    _, err = fail(make(fake))
    assert "was cut after 7 chars" in str(err)


def test_non_streamed_reply_cut(fake: FakeOpenAI) -> None:
    fake.push(Fault.cut("a long reply that never fully arrives", after=20))
    _, err = fail(make(fake, stream=False))
    assert f"lost the connection to {fake.url}" in str(err)


def test_garbage_in_the_stream(fake: FakeOpenAI) -> None:
    fake.push(Fault.garbage("Thought: "))
    got, err = fail(make(fake))
    assert got == "Thought: "
    assert "not OpenAI chat JSON after 9 chars" in str(err)


def test_garbage_body_not_streamed(fake: FakeOpenAI) -> None:
    fake.push(Fault.garbage(junk="<html>not an API</html>"))
    _, err = fail(make(fake, stream=False))
    assert "not OpenAI chat JSON" in str(err)
    assert "OpenAI-compatible" in str(err)


def test_error_event_mid_stream(fake: FakeOpenAI) -> None:
    fake.push(Fault.garbage("Thou", junk='{"error": {"message": "CUDA out of memory"}}'))
    got, err = fail(make(fake))
    assert got == "Thou"
    assert "reported an error mid-reply after 4 chars: CUDA out of memory" in str(err)


def test_the_key_is_scrubbed_from_server_messages(fake: FakeOpenAI) -> None:
    fake.push(Fault.status_error(400, f"key {KEY} is\nnot\tvalid here"))
    _, err = fail(make(fake))
    assert "***" in str(err)
    assert "key *** is not valid here" in str(err)


def test_long_server_messages_are_bounded(fake: FakeOpenAI) -> None:
    fake.push(Fault.status_error(400, "x" * 5000))
    _, err = fail(make(fake))
    assert len(str(err)) <= 300


def test_closing_the_stream_early_is_fine(fake: FakeOpenAI) -> None:
    fake.push(Reply("a" * 400, chunk_size=4), "next")
    llm = make(fake)
    stream = llm.complete(MESSAGES)
    assert isinstance(stream, Generator)
    assert next(stream) == "aaaa"
    stream.close()
    assert "".join(llm.complete(MESSAGES)) == "next"


# -- the client-side stop cutter -----------------------------------------------------------


@given(
    text=st.text(alphabet="abO\n:", max_size=40),
    stops=st.lists(st.text(alphabet="abO\n:", min_size=1, max_size=4), min_size=1, max_size=3),
    size=st.integers(min_value=1, max_value=6),
)
def test_stop_cutter_matches_cut_at_stop(text: str, stops: list[str], size: int) -> None:
    # With overlapping stops (one a part of another, or one ending where another starts) a stream must stop at
    # the first stop it completes, which the whole-text cut cannot know; compare only where that cannot happen.
    assume(
        all(
            a == b or (a not in b and not any(b.startswith(a[i:]) for i in range(1, len(a))))
            for a in stops
            for b in stops
        )
    )
    cutter = StopCutter(stops)
    out: list[str] = []
    for start in range(0, len(text), size):
        piece, hit = cutter.feed(text[start : start + size])
        out.append(piece)
        if hit:
            break
    else:
        out.append(cutter.flush())
    assert "".join(out) == cut_at_stop(text, stops)[0]


def test_importing_the_backends_does_not_import_openai() -> None:
    code = (
        "import sys, vchat.llm.openai_backend, vchat.llm.select, vchat.llm.scripted; "
        "assert 'openai' not in sys.modules, 'openai imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_stop_cutter_stops_at_the_first_stop_completed() -> None:
    """Like a server: with overlapping stops the stream ends where the first stop string is complete."""
    cutter = StopCutter(["\n", ":\n:"])
    pieces = [cutter.feed(ch) for ch in ":\n:"]
    assert pieces[1] == (":", True)


def test_an_injected_http_client_carries_the_request_without_a_server() -> None:
    """`http_client` (httpx2, what the openai client uses): request body to parsed reply, no socket opened."""
    import json

    import httpx2 as httpx

    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        body = {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": REACT}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
        }
        return httpx.Response(200, json=body)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    chat = OpenAIChat("m", "http://127.0.0.1:9/v1", KEY, stream=False, max_retries=0, http_client=client)
    text = "".join(chat.complete(MESSAGES, stop=STOP))
    assert text == REACT.split("\nObservation:")[0]
    assert seen[0]["messages"] == MESSAGES and seen[0]["stop"] == STOP
    assert chat.last_finish == "stop" and chat.last_usage == (7, 5)
