"""Nothing the model, a server or a file name sends reaches the terminal as a control sequence.

Model replies, server error bodies, tool inputs and file names go through `vchat run` (a real
subprocess, the real client over real HTTP) and the REPL's renderer (a console that is a
terminal): no raw ESC, C1 or bidi override may come out, `--json` stays valid, no traceback.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from tests.fake_openai import FakeOpenAI, Fault
from tests.helpers import act, answer, make_session, write_photo
from tests.test_cli import vchat

from vchat.cli.repl import Repl
from vchat.llm.openai_backend import OpenAIChat

CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZAo=\x1b\\"  # OSC 52: write the user's clipboard
CLEAR = "\x1b[2J\x1b[H"  # clear the screen
TITLE = "\x1b]0;owned\x07"  # set the window title
REPORT = "\x1b[21t"  # make the terminal answer (type its title back into the input)
C1_CSI = "\x9b2J"  # one-character CSI
BIDI = "\u202eevil\u202c"
NASTY = f"Hello {CLIPBOARD}{CLEAR}{TITLE}{REPORT}{C1_CSI}{BIDI} world"
# vchat's own sequences on a terminal: colours (SGR), and the spinner's cursor hide/show, line erase, line up, CR.
_OURS = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\x1b\[2K|\x1b\[\d*A|\r")


def raw_controls(text: str) -> list[str]:
    """Control characters a terminal would act on, left after removing vchat's own styling and spinner."""
    left = _OURS.sub("", text)
    return [
        ch
        for ch in left
        if (ord(ch) < 0x20 and ch not in "\n\t") or 0x7F <= ord(ch) <= 0x9F or ch in "\u202a\u202b\u202c\u202d\u202e"
    ]


# -- the module ------------------------------------------------------------------------------


def test_safe_text_shows_every_control_visibly() -> None:
    from vchat.ui.safe import safe_line, safe_text

    shown = safe_text(NASTY + "\x00\r\n\tok")
    assert raw_controls(shown) == []
    assert "^[]52;c;" in shown and "^[[2J" in shown and "^G" in shown and "<U+009B>2J" in shown
    assert "<U+202E>evil<U+202C>" in shown and "^@" in shown and shown.endswith("\n\tok")
    assert safe_text("a\rb") == "a\nb"  # a carriage return cannot write over the start of a line
    assert safe_text("\ud800 lone") == "\ufffd lone"
    assert safe_line("two\nlines\x1b[1m", 12) == "two lines^[…"


def test_safe_json_escapes_c1_bidi_and_lone_surrogates_and_round_trips() -> None:
    from vchat.ui.safe import safe_json

    value = {"text": NASTY + "\ud83d ünïcødé 😀 \u2028"}
    text = safe_json(value)
    assert raw_controls(text) == [] and "\u2028" not in text
    assert "ünïcødé 😀" in text  # readable text stays readable
    assert json.loads(text) == value
    text.encode("utf-8")  # no lone surrogate left to crash the write


# -- vchat run over real HTTP ------------------------------------------------------------------------


@pytest.mark.slow
def test_run_answer_and_steps_are_neutralised_on_stdout_and_stderr(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    thought = f"Thought: Do I need to use a tool? Yes {TITLE}\nAction: canny_edges\nAction Input: img1 {CLEAR}"
    with FakeOpenAI([thought, answer(NASTY)]) as server:
        out = vchat(tmp_path, "run", "edges", "-i", str(photo), "--base-url", server.url, "-m", "m", "-v")
    assert out.returncode == 0, out.stderr
    assert raw_controls(out.stdout) == [] and raw_controls(out.stderr) == []
    assert "^[]52;c;ZWNobyBwd25lZAo=^[\\" in out.stdout  # shown, not hidden
    assert "^[]0;owned^G" in out.stderr  # the thought, with -v


@pytest.mark.slow
def test_run_json_keeps_the_text_exactly_and_escaped(tmp_path: Path) -> None:
    with FakeOpenAI([answer(NASTY)]) as server:
        out = vchat(tmp_path, "run", "hi", "--json", "--base-url", server.url, "-m", "m")
    assert out.returncode == 0, out.stderr
    assert raw_controls(out.stdout) == []
    assert json.loads(out.stdout)["final"] == NASTY


@pytest.mark.slow
def test_server_error_body_with_escapes_is_one_clean_line(tmp_path: Path) -> None:
    body = json.dumps({"error": {"message": f"bad request {CLIPBOARD}{CLEAR}\nsecond line {C1_CSI}"}})
    with FakeOpenAI([Fault.status_body(400, body)]) as server:
        out = vchat(tmp_path, "run", "hi", "--base-url", server.url, "-m", "m")
    assert out.returncode == 1
    assert raw_controls(out.stderr) == []
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad request ^[]52;c;" in errors[0] and "second line" in errors[0]


@pytest.mark.slow
def test_masked_key_echoed_by_a_server_is_redacted(tmp_path: Path) -> None:
    fault = Fault.status_error(403, "Key sk-ABCD****wxyz has no access to this model; project proj_1")
    with FakeOpenAI([fault]) as server:
        out = vchat(tmp_path, "run", "hi", "--base-url", server.url, "-m", "m", OPENAI_API_KEY="sk-ABCDefgh12345wxyz")
    assert out.returncode == 1
    assert "ABCD****wxyz" not in out.stderr and "***" in out.stderr and "no access" in out.stderr


# -- listings -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sessions_listing_shows_brackets_and_escapes_as_text(tmp_path: Path) -> None:
    first = f"crop [/photos/x] please [bold red]loud[/] {CLEAR}"
    with FakeOpenAI([answer("ok"), answer("ok")]) as server:
        made = vchat(tmp_path, "run", first, "--base-url", server.url, "-m", "m")
        assert made.returncode == 0, made.stderr
        made = vchat(tmp_path, "run", "crop [/photos/x] please", "--base-url", server.url, "-m", "m")
        assert made.returncode == 0, made.stderr
    out = vchat(tmp_path, "sessions")
    assert out.returncode == 0, out.stderr
    assert "crop [/photos/x] please [bold red]loud[/] ^[[2J" in out.stdout
    assert raw_controls(out.stdout) == []


@pytest.mark.slow
def test_images_listing_neutralises_names_from_the_transcript(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    made = vchat(tmp_path, "run", "--tool", "grayscale_image", "-i", str(photo))
    assert made.returncode == 0, made.stderr
    transcript = next((tmp_path / "out").glob("*/session.jsonl"))
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    for record in records:
        if record["type"] == "image" and record["image"]["tool"]:
            record["image"]["tool"] = f"gray{CLEAR}{BIDI}"
    transcript.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = vchat(tmp_path, "images")
    assert out.returncode == 0, out.stderr
    assert "gray^[[2J" in out.stdout and raw_controls(out.stdout) == []


# -- the REPL's renderer, on a console that is a terminal ----------------------------------------------


def _terminal_repl(tmp_path: Path, replies: list[str], verbose: bool = True) -> tuple[Repl, io.StringIO]:
    session = make_session(tmp_path, replies, verbose=verbose)
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system="standard", highlight=False)
    return Repl(session, console), out


def test_repl_streamed_answer_over_http_is_neutralised(tmp_path: Path) -> None:
    with FakeOpenAI([answer(NASTY + " and more text to stream past the hold-back window")]) as server:
        repl, out = _terminal_repl(tmp_path, [])
        repl.session.llm = OpenAIChat("m", base_url=server.url, timeout=5.0, max_retries=0)
        repl.handle("hello")
    text = out.getvalue()
    assert "Hello ^[]52;c;" in text and "^[[2J" in text
    assert raw_controls(text) == []


def test_repl_steps_thoughts_and_inputs_are_neutralised(tmp_path: Path) -> None:
    reply = f"Thought: Do I need to use a tool? Yes {TITLE}\nAction: canny_edges\nAction Input: img1{REPORT}"
    repl, out = _terminal_repl(tmp_path, [reply, act(f"no_such{CLEAR}", "img1"), answer(f"done {BIDI}")])
    repl.session.attach(write_photo(tmp_path))
    repl.handle("go")
    text = out.getvalue()
    assert "^[]0;owned^G" in text and "^[[21t" in text and "<U+202E>" in text
    assert raw_controls(text) == []


# -- property: arbitrary text as replies, errors and file names --------------------------------------

_ANY_TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),  # everything: C0, C1, surrogates, NUL
    max_size=200,
)
_CONTROLS = st.text(alphabet=st.sampled_from(list("\x00\x07\x08\x1b\r\n\t\x9b\x9d\x85\u202e\u2066\ud800\udfff[]/")))
_WILD = st.one_of(_ANY_TEXT, _CONTROLS, st.builds(lambda s, n: s * n, _CONTROLS, st.integers(100, 5000)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reply=_WILD, error=_WILD)
def test_property_repl_renderer_never_emits_raw_controls(tmp_path: Path, reply: str, error: str) -> None:
    replies = [reply, act("canny_edges", reply[:300]), answer(reply)]
    repl, out = _terminal_repl(tmp_path, replies)
    repl.handle("x")
    from vchat.chat.steps import Step

    repl.renderer.step(Step("error", text=error))
    repl.renderer.step(Step("observation", tool=error[:20], observation=error))
    repl.session.close()
    assert raw_controls(out.getvalue()) == []


def _valid_name(text: str) -> str:
    name = "".join(ch for ch in text if ch not in "/\x00" and not ("\ud800" <= ch <= "\udfff"))[:100]
    return (name or "x") + ".png"


def _vchat_in_process(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """`vchat ARGS` through the real command-line app in this process (fast enough for many examples)."""
    from typer.testing import CliRunner

    from vchat.cli.app import app

    env = {"VCHAT_OUT": str(tmp_path / "out"), "NO_COLOR": "1", "COLUMNS": "200", "VCHAT_MAX_FORMAT_RETRIES": "0"}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a failure
    return result.exit_code, result.stdout, result.stderr


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reply=_WILD, error=_WILD, name=_ANY_TEXT)
@pytest.mark.slow
def test_property_vchat_run_over_http(
    tmp_path_factory: pytest.TempPathFactory, reply: str, error: str, name: str
) -> None:
    tmp_path = tmp_path_factory.mktemp("prop")
    photo = write_photo(tmp_path, _valid_name(name))
    not_an_image = tmp_path / ("bad " + _valid_name(name))
    not_an_image.write_bytes(b"not a picture")
    body = json.dumps({"error": {"message": error}})
    with FakeOpenAI([reply, answer(reply), Fault.status_body(400, body)]) as server:
        common = ["--base-url", server.url, "-m", "m"]
        runs = [
            _vchat_in_process(tmp_path, "run", "look", "-i", str(photo), "--json", *common),
            _vchat_in_process(tmp_path, "run", "again", "-i", str(photo), *common),
            _vchat_in_process(tmp_path, "run", "err", *common),
            _vchat_in_process(tmp_path, "run", "x", "-i", str(not_an_image), "--json", *common),
        ]
    for code, stdout, stderr in runs:
        assert code in (0, 1, 3), stderr
        assert raw_controls(stdout) == [] and raw_controls(stderr) == []
    for _, stdout, _ in (runs[0], runs[3]):
        data = json.loads(stdout)
        assert "session" in data and "error" in data


def test_vchat_show_prints_file_names_visibly(tmp_path: Path) -> None:
    from vchat.cli.show import show

    good = write_photo(tmp_path, f"cat{CLEAR}.png")
    bad = tmp_path / f"dog{TITLE}.png"
    bad.write_bytes(b"not an image")
    out, err = io.BytesIO(), io.StringIO()
    assert show([good, bad], "blocks", out, err=err) == 1
    path_line = out.getvalue().rsplit(b"\n", 2)[-2].rsplit(b"\x1b[0m", 1)[-1].decode()
    assert path_line.endswith("cat^[[2J^[[H.png") and raw_controls(path_line) == []
    assert "dog^[]0;owned^G.png" in err.getvalue() and raw_controls(err.getvalue()) == []
