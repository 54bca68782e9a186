"""What the user did in the chat survives --resume: /undo and /clear stay done, /model stays connected."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from tests.fake_openai import FakeOpenAI
from tests.helpers import answer, make_session, write_photo

from vchat.cli.repl import Repl
from vchat.cli.wiring import build_session, remembered_choice
from vchat.config import Settings
from vchat.errors import VchatError
from vchat.llm.scripted import ScriptedLLM
from vchat.resume import resume_session
from vchat.store.transcript import read_records
from vchat.tools.registry import all_tools


def _repl(tmp_path: Path, replies: list[str]) -> tuple[Repl, io.StringIO]:
    session = make_session(tmp_path, replies)
    session.attach(write_photo(tmp_path))
    out = io.StringIO()
    return Repl(session, Console(file=out, width=200, highlight=False)), out


def _texts(messages: list[object]) -> str:
    return json.dumps([getattr(m, "content", m) for m in messages], default=str)


def test_undo_is_not_brought_back_by_the_next_turn(tmp_path: Path) -> None:
    repl, _ = _repl(tmp_path, [answer("one"), answer("two"), answer("three")])
    repl.handle("first question")
    repl.handle("second question")
    repl.handle("/undo")
    repl.handle("third question")
    sent = _texts(repl.session.history)
    assert "first question" in sent and "third question" in sent
    assert "second question" not in sent, "the undone exchange came back with the next turn"


def test_resume_forgets_what_undo_and_clear_removed(tmp_path: Path) -> None:
    repl, _ = _repl(tmp_path, [answer("one"), answer("two"), answer("three"), answer("four")])
    repl.handle("alpha question")
    repl.handle("beta question")
    repl.handle("/undo")
    session = repl.session
    session.close()
    resumed, _ = resume_session(session.settings, all_tools(), ScriptedLLM([answer("x")]), session.id)
    sent = _texts(resumed.history)
    assert "alpha question" in sent and "beta question" not in sent
    assert len(resumed.turns) == 1
    # /clear, then another resume: nothing of the conversation is sent again; the images stay.
    out = io.StringIO()
    again = Repl(resumed, Console(file=out, width=200))
    again.handle("/clear")
    resumed.close()
    third, _ = resume_session(session.settings, all_tools(), ScriptedLLM([answer("y")]), session.id)
    assert third.turns == [] and third.history == [] and "img1" in third.store
    third.close()


def test_undo_twice_after_resume_then_nothing_to_undo(tmp_path: Path) -> None:
    repl, _ = _repl(tmp_path, [answer("one")])
    repl.handle("only question")
    repl.session.close()
    resumed, _ = resume_session(repl.session.settings, all_tools(), None, repl.session.id)
    again = Repl(resumed, Console(file=io.StringIO()))
    again.handle("/undo")
    with pytest.raises(VchatError, match="nothing to undo"):
        again.handle("/undo")
    resumed.close()
    records, _ = read_records(resumed.folder / "session.jsonl")
    assert [r["type"] for r in records].count("undo") == 1


def test_model_switch_is_kept_across_resume(tmp_path: Path) -> None:
    with FakeOpenAI([answer("from the server"), answer("again from the server")], models=["m1"]) as fake:
        repl, out = _repl(tmp_path, [answer("from the script")])
        repl.handle("hello")
        repl.handle(f"/model {fake.url} m1")
        repl.handle("and now?")
        assert "from the server" in out.getvalue()
        session = repl.session
        session.close()
        settings = Settings(out_dir=tmp_path / "out", llm="none")  # what the config would give on restart
        assert remembered_choice(settings, session.id) == {"llm": "auto", "model": "m1", "base_url": fake.url}
        resumed, _ = build_session(settings, llm="optional", resume=session.id)
        assert resumed.llm is not None and "m1" in resumed.llm.name
        # Flags on the resuming command line choose anew.
        resumed.close()
        chosen, _ = build_session(settings, llm="optional", resume=session.id, llm_flags=True)
        assert chosen.llm is None
        chosen.close()
    records, _ = read_records(session.folder / "session.jsonl")
    choices = [r for r in records if r["type"] == "model"]
    assert choices and "api_key" not in json.dumps(records)


def test_a_model_chosen_before_the_first_message_is_kept(tmp_path: Path) -> None:
    with FakeOpenAI([answer("server answer")], models=["m2"]) as fake:
        session = make_session(tmp_path, [answer("unused")])
        repl = Repl(session, Console(file=io.StringIO()))
        repl.handle(f"/model {fake.url} m2")
        assert not session.transcript.path.exists()  # nothing happened yet: no session on disk
        repl.handle("hi")
        session.close()
        assert remembered_choice(Settings(out_dir=tmp_path / "out"), session.id) == {
            "llm": "auto",
            "model": "m2",
            "base_url": fake.url,
        }


def test_a_remembered_server_that_is_gone_says_how_to_choose_another(tmp_path: Path) -> None:
    with FakeOpenAI([answer("x")], models=["m3"]) as fake:
        repl, _ = _repl(tmp_path, [answer("one")])
        repl.handle(f"/model {fake.url}")  # no model named: a resume asks the server for its list
        repl.handle("hello")
        repl.session.close()
    with pytest.raises(VchatError, match="chose with /model; --llm, --model or --base-url pick another"):
        build_session(Settings(out_dir=tmp_path / "out", timeout=2), llm="optional", resume=repl.session.id)


def test_an_address_with_a_password_is_never_written(tmp_path: Path) -> None:
    with FakeOpenAI([answer("one"), answer("two")], models=["m1"]) as fake:
        repl, _ = _repl(tmp_path, [answer("scripted")])
        repl.handle(f"/model {fake.url} m1")
        repl.handle("first")
        secret_url = fake.url.replace("http://", "http://me:hunter2@")
        repl.handle(f"/model {secret_url} m1")
        repl.handle("second")
        repl.session.close()
    text = (repl.session.folder / "session.jsonl").read_text()
    assert "hunter2" not in text
    # Nor does resume fall back to the switch before it: the settings as given decide.
    assert remembered_choice(Settings(out_dir=tmp_path / "out"), repl.session.id) is None
