"""`constrain = "on"` against an OpenAI-compatible server: the reply grammar is sent as the structured-output
option; a server that refuses it gets one notice in the session and the turn goes on unconstrained."""

from __future__ import annotations

from pathlib import Path

from fake_openai import FakeOpenAI, Fault
from helpers import write_photo
from vchat.config import Settings
from vchat.llm.select import select_llm
from vchat.session import Session
from vchat.tools.transform import FlipImage


def _session(tmp_path: Path, url: str, constrain: str) -> Session:
    settings = Settings(out_dir=tmp_path / "out", llm="openai", base_url=url, api_key="sk-test", model="m")
    settings.constrain = constrain
    llm = select_llm(settings)
    session = Session(settings, [FlipImage()], llm, session_id=f"c-{constrain}")
    session.attach(write_photo(tmp_path, width=32, height=24))
    return session


def test_the_grammar_is_sent_and_a_refusal_is_one_notice(tmp_path: Path) -> None:
    refusal = Fault.status_error(400, "Unrecognized request argument supplied: structured_outputs")
    call = 'Thought: Do I need to use a tool? Yes\nAction: flip_image\nAction Input: {"image": "img1"}'
    done = "Thought: Do I need to use a tool? No\nAI: Flipped, img2."
    with FakeOpenAI(replies=[refusal, call, done]) as fake:
        session = _session(tmp_path, fake.url, "on")
        steps = list(session.turn("flip it"))
        session.close()
        sent = fake.chat_requests
    assert [s.kind for s in steps] == ["notice", "action", "observation", "final"]
    assert "does not take a grammar" in steps[0].text
    # The first request carried the grammar (with the session's images), the retry and the next step did not.
    grammar = sent[0].body["structured_outputs"]["grammar"]
    assert '"flip_image\\nAction Input: "' in grammar and '"\\"img1\\""' in grammar
    assert all("structured_outputs" not in r.body for r in sent[1:]) and len(sent) == 3


def test_auto_sends_no_grammar_to_a_server(tmp_path: Path) -> None:
    with FakeOpenAI(replies=["Thought: Do I need to use a tool? No\nAI: Hi."]) as fake:
        session = _session(tmp_path, fake.url, "auto")
        steps = list(session.turn("hello"))
        session.close()
        assert "structured_outputs" not in fake.chat_requests[0].body
    assert [s.kind for s in steps] == ["final"]
