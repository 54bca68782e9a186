"""A reply the server cut at the token cap (finish_reason "length"): said in one line in the REPL, `vchat run`
and `--json`; a cut step is never run (the model hears why), a cut answer is shown with a note. Real HTTP."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from tests.fake_openai import FakeOpenAI, Fault, Reply
from tests.helpers import act, answer, make_session, write_photo
from tests.test_cli import vchat

from vchat.cli.repl import Repl
from vchat.config import Settings
from vchat.llm.openai_backend import OpenAIChat
from vchat.session import Session
from vchat.tools.registry import all_tools

LONG = "The photo shows a yellow square on a plain background, drawn with soft edges and a faint"
CUT_STEP = Reply(act("canny_edges", '{"image": "img1", "low": 5'), finish_reason="length")


def _chat(fake: FakeOpenAI, **options: object) -> OpenAIChat:
    return OpenAIChat("m", base_url=fake.url, timeout=5.0, max_retries=0, max_tokens=64, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_backend_reports_why_the_reply_ended(stream: bool) -> None:
    with FakeOpenAI([Reply("cut sho", finish_reason="length"), "whole"]) as fake:
        chat = _chat(fake, stream=stream)
        assert "".join(chat.complete([{"role": "user", "content": "hi"}])) == "cut sho"
        assert chat.last_finish == "length"
        assert "".join(chat.complete([{"role": "user", "content": "hi"}])) == "whole"
        assert chat.last_finish == "stop"


def test_a_cut_step_is_not_run_and_the_model_hears_why(tmp_path: Path) -> None:
    with FakeOpenAI([CUT_STEP, act("canny_edges", '{"image": "img1", "low": 5}'), answer("Edges: img2.")]) as fake:
        session = make_session(tmp_path)
        session.llm = _chat(fake)
        session.attach(write_photo(tmp_path))
        steps = list(session.turn("edges please"))
        requests = fake.chat_requests
    assert [s.kind for s in steps] == ["retry", "action", "observation", "final"]
    assert steps[0].reason == "length" and "max_tokens=64" in steps[0].text and "nothing was run" in steps[0].text
    assert [ref.handle for ref in session.store] == ["img1", "img2"]  # only the whole call made an image
    told = requests[1].messages[-1]["content"]
    assert told.startswith("Observation: Your reply was cut at the length limit (64 tokens)")
    # The cut reply stays in the turn's messages, so the model sees what it wrote.
    assert requests[1].messages[-2] == {"role": "assistant", "content": CUT_STEP.text}


@pytest.mark.slow
def test_run_shows_a_cut_answer_with_a_one_line_note(tmp_path: Path) -> None:
    with FakeOpenAI([Reply(answer(LONG), finish_reason="length")]) as fake:
        out = vchat(tmp_path, "run", "describe", "--base-url", fake.url, "-m", "m", VCHAT_MAX_TOKENS="64")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == LONG
    notes = [line for line in out.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: the answer was cut at the token cap (max_tokens=64) and may be incomplete; "
        "raise `max_tokens` for longer replies"
    ]


@pytest.mark.slow
def test_run_json_has_a_notice_step_before_the_final(tmp_path: Path) -> None:
    with FakeOpenAI([CUT_STEP, Reply(answer(LONG), finish_reason="length")]) as fake:
        photo = write_photo(tmp_path)
        args = ["run", "edges", "-i", str(photo), "--json", "--base-url", fake.url, "-m", "m"]
        out = vchat(tmp_path, *args, VCHAT_STREAM="0")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [s["kind"] for s in data["steps"]] == ["retry", "notice", "final"]
    assert "cut at the token cap" in data["steps"][0]["observation"]
    assert "may be incomplete" in data["steps"][1]["observation"]
    assert data["final"] == LONG and len(data["images"]) == 1


@pytest.mark.slow
def test_run_gives_up_with_exit_3_when_every_reply_is_cut(tmp_path: Path) -> None:
    with FakeOpenAI([CUT_STEP] * 3) as fake:
        photo = write_photo(tmp_path)
        out = vchat(tmp_path, "run", "edges", "-i", str(photo), "--base-url", fake.url, "-m", "m")
    assert out.returncode == 3, out.stderr
    error = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert error == [
        "error: the model's replies could not be used after 3 tries (last: cut at the token cap (max_tokens=1024)); "
        "raise `max_tokens`"
    ]
    assert out.stdout == ""


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_repl_prints_the_note_under_the_answer(tmp_path: Path, stream: bool) -> None:
    reply = Reply(answer(LONG + " and more words to stream past the hold-back"), finish_reason="length")
    with FakeOpenAI([reply]) as fake:
        session = make_session(tmp_path)
        session.llm = _chat(fake, stream=stream)
        out = io.StringIO()
        repl = Repl(session, Console(file=out, width=200, force_terminal=True, highlight=False))
        repl.handle("describe it")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # the styling, not the words
    assert "more words to stream past the hold-back" in text
    note = text.index("note: the answer was cut at the token cap (max_tokens=64)")
    assert note > text.index("hold-back")  # under the answer, not inside it
    assert text.count("note:") == 1


# -- native tool calling --------------------------------------------------------------------------


def _native(tmp_path: Path, fake: FakeOpenAI, **settings: object) -> Session:
    llm = _chat(fake, stream=True)
    session = Session(Settings(out_dir=tmp_path / "out", protocol="tools", **settings), all_tools(), llm)  # type: ignore[arg-type]
    session.attach(write_photo(tmp_path))
    return session


def test_native_cut_calls_are_not_run_and_a_cut_answer_gets_a_note(tmp_path: Path) -> None:
    cut_call = Reply(
        "", tool_calls=[{"name": "transform", "arguments": '{"image": "img1", "op": "fl'}], finish_reason="length"
    )
    with FakeOpenAI([cut_call, Reply("A yellow square, cut", finish_reason="length")]) as fake:
        session = _native(tmp_path, fake)
        steps = list(session.turn("flip it"))
        requests = fake.chat_requests
    assert [(s.kind, s.reason) for s in steps] == [("retry", "length"), ("notice", "length"), ("final", None)]
    assert len(session.store) == 1  # the cut call never ran
    assert requests[1].messages[-1]["content"].startswith("Your reply was cut at the length limit (64 tokens)")
    assert "tool_calls" not in requests[1].messages[-2]  # no call left without its tool message


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_step_that_ended_at_a_stop_string_is_whole_even_if_the_rest_was_cut(tmp_path: Path, stream: bool) -> None:
    # A server that refuses `stop`: vchat cuts at "\nObservation:" itself; the rambling after it hit the cap.
    rambling = Reply(act("canny_edges", "img1") + "\nObservation: imagined edges and on and on", finish_reason="length")
    with FakeOpenAI([Fault.refuse_stop(), rambling, answer("Edges: img2.")]) as fake:
        session = make_session(tmp_path)
        session.llm = _chat(fake, stream=stream)
        session.attach(write_photo(tmp_path))
        steps = list(session.turn("edges please"))
    assert [s.kind for s in steps] == ["action", "observation", "final"]
    assert [ref.handle for ref in session.store] == ["img1", "img2"]
