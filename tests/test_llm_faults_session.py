"""Backend faults mid-session: one clear error, the session goes on, nothing earlier is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fake_openai import FakeOpenAI, Fault
from tests.helpers import act, answer, make_session, write_photo

from vchat.llm.openai_backend import OpenAIChat
from vchat.store.transcript import read_records

FAULTS = {
    "401": (Fault.unauthorized(), "rejected the API key"),
    "404_model": (Fault.model_not_found("m"), "not found"),
    "500": (Fault.server_error(), "http 500"),
    "timeout": (Fault.delay(5.0), "timed out"),
    "stream_cut": (Fault.cut("Thought: Do I need to use a tool? Yes\nAction: canny", after=20), "cut"),
    "garbage": (Fault.garbage(), "not OpenAI chat JSON"),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_mid_session(tmp_path: Path, name: str) -> None:
    fault, message = FAULTS[name]
    retried = [fault] * 3 if name == "500" else [fault]
    items = [act("canny_edges", "img1"), answer("edges in img2"), *retried, answer("still here")]
    with FakeOpenAI(items) as server:  # type: ignore[arg-type]
        session = make_session(tmp_path)
        session.llm = OpenAIChat("m", base_url=server.url, timeout=1.0, max_retries=2 if name == "500" else 0)
        session.attach(write_photo(tmp_path))
        first = list(session.turn("edges"))
        broken = list(session.turn("and now?"))
        after = list(session.turn("are you there?"))
    assert first[-1].text == "edges in img2"
    assert broken[-1].kind == "error"
    assert message.lower() in broken[-1].text.lower()
    assert "\n" not in broken[-1].text
    assert after[-1].text == "still here"
    assert session.store.get("img2").path.is_file()
    kinds = [r.get("kind") for r in read_records(session.transcript.path)[0] if r["type"] == "step"]
    assert kinds.count("final") == 2 and kinds.count("error") == 1


def test_rate_limit_then_success(tmp_path: Path) -> None:
    with FakeOpenAI([Fault.rate_limited(), answer("after the wait")]) as server:
        session = make_session(tmp_path)
        session.llm = OpenAIChat("m", base_url=server.url, timeout=5.0, max_retries=2)
        steps = list(session.turn("hello"))
    assert steps[-1].text == "after the wait"
