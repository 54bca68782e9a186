"""One clock for a whole model call: vchat's own retries (not the client's) stay within `reply_deadline`.

Over real HTTP against tests/fake_openai.py. Before, the openai client retried on its own
clock: the caller stopped waiting at the deadline, but the client went on sending requests
(each with the full timeout, after waits the server asked for) long after it.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from tests.fake_openai import FakeOpenAI, Fault

from vchat.errors import LLMError
from vchat.llm.base import Message
from vchat.llm.openai_backend import OpenAIChat
from vchat.llm.retry import wait_before_retry

MESSAGES: list[Message] = [{"role": "user", "content": "Hello"}]


def _fail(chat: OpenAIChat) -> LLMError:
    with pytest.raises(LLMError) as info:
        list(chat.complete(MESSAGES))
    assert "\n" not in str(info.value)
    return info.value


def test_a_retry_the_deadline_has_no_room_for_is_not_sent() -> None:
    # The server asks for 1.5 s before the next try; only 1 s of the deadline is left.
    with FakeOpenAI([Fault.server_error(retry_after_ms=1500), "too late"]) as fake:
        chat = OpenAIChat("m", base_url=fake.url, timeout=5.0, max_retries=2, reply_deadline=1.0)
        err = _fail(chat)
        time.sleep(1.0)  # past the moment the server's wait would have ended
        sent = len(fake.chat_requests)
    assert "failed with HTTP 500 (after 0 retries)" in str(err)
    assert "no time left within reply_deadline (1s) to retry" in str(err)
    assert sent == 1


@pytest.mark.slow
def test_every_attempt_and_wait_comes_out_of_the_deadline() -> None:
    # A server that never answers: 0.4 s per attempt, five retries allowed, a 1 s deadline in all.
    with FakeOpenAI([Fault.delay(5)] * 6) as fake:
        chat = OpenAIChat("m", base_url=fake.url, timeout=0.4, max_retries=5, reply_deadline=1.0)
        started = time.monotonic()
        err = _fail(chat)
        time.sleep(max(0.0, started + 3.0 - time.monotonic()))  # the client's own retries ran on to ~3.5 s
        sent = len(fake.chat_requests)
    assert "reply_deadline" in str(err)
    assert sent <= 2  # the first attempt, and at most one more that fitted before the deadline


def test_a_retry_that_fits_is_still_made() -> None:
    with FakeOpenAI([Fault.rate_limited(), Fault.server_error(503), "made it"]) as fake:
        chat = OpenAIChat("m", base_url=fake.url, timeout=5.0, max_retries=2, reply_deadline=30.0)
        assert "".join(chat.complete(MESSAGES)) == "made it"
        assert len(fake.chat_requests) == 3


def test_a_server_that_says_do_not_retry_is_not_retried() -> None:
    refusal = Fault.status_error(503, "maintenance", **{"x-should-retry": "false"})
    with FakeOpenAI([refusal, "never"]) as fake:
        err = _fail(OpenAIChat("m", base_url=fake.url, timeout=5.0, max_retries=2))
        assert len(fake.chat_requests) == 1
    assert "HTTP 503" in str(err)


class _Status(Exception):
    def __init__(self, status_code: int, **headers: str) -> None:
        self.status_code = status_code
        self.response = SimpleNamespace(headers=headers)


class _Connection(Exception):
    pass


def test_which_failures_are_retried() -> None:
    # The client's exception classes stand in here (the rules only read status and headers).
    client = SimpleNamespace(APIStatusError=_Status, APIConnectionError=_Connection)
    assert wait_before_retry(_Status(400), 0, client) is None
    assert wait_before_retry(_Status(404), 0, client) is None
    assert wait_before_retry(_Status(429, **{"retry-after-ms": "250"}), 0, client) == 0.25
    assert wait_before_retry(_Status(503, **{"retry-after": "600"}), 0, client) is None  # longer than 2 min
    assert wait_before_retry(_Status(400, **{"x-should-retry": "true"}), 0, client) is not None
    assert wait_before_retry(ValueError("not a transport error"), 0, client) is None
    first = wait_before_retry(_Connection(), 0, client)
    later = wait_before_retry(_Connection(), 6, client)
    assert first is not None and 0.375 <= first <= 0.5 and later is not None and 6.0 <= later <= 8.0
