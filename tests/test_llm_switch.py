"""`/model` in the chat: switch model or server without a restart; mistakes are one line and change nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from tests.fake_openai import FakeOpenAI
from tests.helpers import answer, make_session

from vchat.cli.repl import Repl
from vchat.config import Settings
from vchat.errors import VchatError
from vchat.llm.scripted import ScriptedLLM
from vchat.llm.switch import settings_for
from vchat.store.transcript import read_records


def test_settings_for_each_form() -> None:
    base = Settings(llm="scripted:x.json", model="old", base_url=None)
    assert settings_for(base, ["none"], None).llm == "none"
    assert settings_for(base, ["local"], None).llm == "local"
    url = settings_for(base, ["http://localhost:11434/v1/", "qwen2.5:14b"], None)
    assert (url.llm, url.base_url, url.model) == ("auto", "http://localhost:11434/v1", "qwen2.5:14b")
    named = settings_for(base, ["gpt-4o-mini"], None)
    assert (named.llm, named.model, named.base_url) == ("auto", "gpt-4o-mini", None)
    assert base.llm == "scripted:x.json" and base.model == "old"  # the caller's settings are untouched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["localhost:11434/v1", "qwen"], "starts with http://, e.g. /model http://localhost:11434/v1 qwen"),
        (["127.0.0.1:8080"], "starts with http://"),
        (["ftp://host/v1"], "starts with http:// or https://"),
        (["a", "b"], "usage: /model NAME"),
        (["a", "b", "c"], "usage: /model NAME"),
    ],
)
def test_settings_for_mistakes(args: list[str], message: str) -> None:
    with pytest.raises(VchatError, match=message):
        settings_for(Settings(), args, None)


def test_model_switches_server_and_model_without_restart(tmp_path: Path) -> None:
    session = make_session(tmp_path, [answer("from the script")])
    out = io.StringIO()
    repl = Repl(session, Console(file=out, width=200, highlight=False))
    repl.handle("hello")
    with FakeOpenAI([answer("from the server"), answer("from the other model")], models=["m1", "m2"]) as fake:
        repl.handle(f"/model {fake.url} m1")
        assert f"connected: m1 @ 127.0.0.1:{fake.port}" in out.getvalue()
        repl.handle("and now?")
        assert "from the server" in out.getvalue()
        assert fake.chat_requests[-1].body["model"] == "m1"
        # The conversation so far goes along to the new model.
        assert "hello" in str(fake.chat_requests[-1].messages)
        repl.handle("/model m2")  # a name alone: same server, other model
        repl.handle("again?")
        assert fake.chat_requests[-1].body["model"] == "m2"
        with pytest.raises(VchatError, match="has no model 'm3'; it serves: m1, m2"):
            repl.handle("/model m3")
        assert session.llm is not None and session.llm.name.startswith("m2 @")  # a failed switch changes nothing
    repl.handle("/model none")
    assert session.llm is None and "disconnected" in out.getvalue()
    repl.handle("/model")
    assert "no language model connected" in out.getvalue()
    models = [r.get("model") for r in read_records(session.transcript.path)[0] if r["type"] == "model"]
    assert models == [f"m1 @ 127.0.0.1:{fake.port}", f"m2 @ 127.0.0.1:{fake.port}", None]


def test_model_cannot_reach_a_server_is_one_line(tmp_path: Path) -> None:
    session = make_session(tmp_path, [])
    repl = Repl(session, Console(file=io.StringIO(), width=200))
    with pytest.raises(VchatError, match="cannot reach"):
        repl.handle("/model http://127.0.0.1:9/v1")
    assert isinstance(session.llm, ScriptedLLM)


def test_model_local_connects_the_builtin_planner_to_the_session(hub_cache: Path, tmp_path: Path) -> None:
    from vchat.llm.local import LocalLLM

    session = make_session(tmp_path, [answer("from the script")])
    out = io.StringIO()
    repl = Repl(session, Console(file=out, width=200, highlight=False))
    repl.handle("/model local")
    assert isinstance(session.llm, LocalLLM)
    assert session.llm.manager is session.models  # one runtime, one memory budget with the tools
    assert "connected: Qwen/Qwen3.5-0.8B (built-in)" in out.getvalue()


def test_a_model_name_nothing_serves_is_an_error_not_the_planner(
    hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vchat.llm.select.LOCAL_SERVERS", {})  # no server on this machine's usual ports
    session = make_session(tmp_path, [])
    session.llm = None
    repl = Repl(session, Console(file=io.StringIO(), width=200))
    with pytest.raises(VchatError, match="no server found for 'gpt-4o-mini'; set OPENAI_API_KEY"):
        repl.handle("/model gpt-4o-mini")
    assert session.llm is None
