"""REPL commands in-process: slash commands, Ctrl-C during a slow tool, streamed answers."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from tests.helpers import act, answer, make_session, write_photo

from vchat.cli.repl import Repl
from vchat.errors import VchatError
from vchat.store.transcript import read_records
from vchat.tools.base import Field, Tool, ToolContext, ToolResult


class SlowTool(Tool):
    name = "slow_paint"
    description = "twenty slow steps, then an image"
    inputs = (Field("image", "image", "any"),)

    def __init__(self) -> None:
        self.steps_done = 0

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        for i in range(20):
            time.sleep(0.1)
            self.steps_done = i + 1
            ctx.progress(i + 1, 20, "painting")
        image = ctx.load_image(args["image"])
        return ToolResult(
            "painted", [ctx.save_image(image, tool=self.name, params={}, parents=(args["image"].handle,))]
        )


def _repl(tmp_path: Path, replies: list[str] | None = None) -> tuple[Repl, io.StringIO]:
    session = make_session(tmp_path, replies)
    session.attach(write_photo(tmp_path))
    out = io.StringIO()
    return Repl(session, Console(file=out, width=200, highlight=False)), out


def test_ctrl_c_stops_a_tool_within_one_step_and_keeps_the_session(tmp_path: Path) -> None:
    repl, out = _repl(tmp_path, [act("slow_paint", "img1"), answer("back")])
    tool = SlowTool()
    repl.session.tools[tool.name] = tool
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    repl.handle("paint it")
    elapsed = time.monotonic() - started
    timer.join()
    assert "cancelled" in out.getvalue()
    assert 2 <= tool.steps_done < 20  # stopped at the first step after the Ctrl-C
    assert elapsed < 1.5
    assert len(repl.session.store) == 1  # no half-made image
    assert not list(repl.session.folder.glob("*.tmp"))
    repl.handle("still there?")
    assert "back" in out.getvalue()
    kinds = [r["type"] for r in read_records(repl.session.transcript.path)[0]]
    assert "cancelled" in kinds


def test_streamed_answer_is_printed_once(tmp_path: Path) -> None:
    repl, out = _repl(tmp_path, [answer("a fairly long answer that arrives in several chunks, all of it")])
    repl.handle("hello")
    text = out.getvalue()
    assert text.count("a fairly long answer that arrives in several chunks, all of it") == 1


def test_slash_commands(tmp_path: Path) -> None:
    repl, out = _repl(tmp_path, [answer("one"), answer("two")])
    repl.handle("/tool flip_image img1")
    assert "img2" in out.getvalue()
    repl.handle("first")
    repl.handle("second")
    assert len(repl.session.history) == 4
    repl.handle("/undo")
    assert len(repl.session.history) == 2
    repl.handle("/clear")
    assert repl.session.history == []
    target = tmp_path / "exported.png"
    repl.handle(f"/save img2 {target}")
    assert target.read_bytes() == repl.session.store.get("img2").path.read_bytes()
    with pytest.raises(VchatError, match="exists"):
        repl.handle(f"/save img2 {target}")
    with pytest.raises(VchatError, match="unknown command"):
        repl.handle("/frobnicate")
    repl.handle("/images")
    assert "img2  flip_image" in out.getvalue()
    assert repl.handle("/quit") is False


def test_undo_with_nothing_to_undo(tmp_path: Path) -> None:
    repl, _ = _repl(tmp_path, [])
    with pytest.raises(VchatError, match="nothing to undo"):
        repl.handle("/undo")


def test_no_model_says_how_to_connect(tmp_path: Path) -> None:
    repl, out = _repl(tmp_path, None)
    repl.handle("hello")
    assert "no language model connected" in out.getvalue()


def test_edit_sends_what_the_editor_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "line one\\nline two\\n" > "$1"\n')
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    repl, out = _repl(tmp_path, [answer("got both lines")])
    repl.handle("/edit")
    assert "got both lines" in out.getvalue()
    sent = repl.session.llm.calls[0][-1]["content"]
    assert sent.startswith("line one\nline two")


def test_edit_with_a_missing_editor_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDITOR", "no-such-editor-here")
    monkeypatch.delenv("VISUAL", raising=False)
    repl, _ = _repl(tmp_path, [])
    with pytest.raises(VchatError, match="not found; set \\$EDITOR"):
        repl.handle("/edit")


@pytest.mark.parametrize("chunks", [1, 3, 4, 7])
def test_streamed_answer_bytes_are_exactly_the_answer(tmp_path: Path, chunks: int) -> None:
    """The answer on screen, streamed in pieces then completed, has no doubled or lost character.

    The streamer holds back the last 24 characters; cutting the sentence at every length puts a
    space right at the edge of what was streamed (the doubled-space bug) for some of them.
    """
    from vchat.llm.scripted import ScriptedLLM

    sentence = "I made the edges of the image you attached and it is ready now, with every line kept as it was"
    texts = [sentence[:n].strip() for n in range(30, len(sentence) + 1)]
    repl, out = _repl(tmp_path, [])
    repl.session.llm = ScriptedLLM([answer(text) for text in texts], chunks=chunks)
    for text in texts:
        before = len(out.getvalue())
        repl.handle("edges please")
        assert out.getvalue()[before:] == text + "\n"


def test_tool_takes_key_value_pairs_and_positional_values(tmp_path: Path) -> None:
    repl, out = _repl(tmp_path, [])
    repl.handle("/tool canny_edges img1 low=50")
    assert repl.session.store.get("img2").params["low"] == 50
    repl.handle("/tool flip_image img1 vertical")
    assert repl.session.store.get("img3").params["direction"] == "vertical"
    repl.handle("/tool canny_edges img1, 20")  # the model's comma form still works by hand
    assert repl.session.store.get("img4").params["low"] == 20
    with pytest.raises(VchatError, match="has no input 'lwo'"):
        repl.handle("/tool canny_edges img1 lwo=50")
    repl.handle("/help")
    assert "/tool canny_edges img1 low=50" in out.getvalue()


def test_a_path_typed_in_a_message_is_announced_and_previewed(tmp_path: Path) -> None:
    shown: list[str] = []
    session = make_session(tmp_path, [answer("a yellow square")])
    out = io.StringIO()
    repl = Repl(session, Console(file=out, width=200, highlight=False), show_image=lambda ref: shown.append(ref.handle))
    photo = write_photo(tmp_path / "My Photos", "cat 1.png")
    repl.handle(f"what is in {photo}?")
    text = out.getvalue()
    assert f"attached img1 64x48  {photo}\n" in text
    assert text.index("attached img1") < text.index("a yellow square")
    assert shown == ["img1"]
    assert "img1" in str(session.llm.calls[0][-1]["content"])
    session.attach(photo)  # the announcing observer is only there during the message
    assert shown == ["img1"]


def test_tool_name_alone_shows_how_to_call_it(tmp_path: Path) -> None:
    repl, out = _repl(tmp_path, [])
    repl.handle("/tool flip_image")
    assert "usage: /tool flip_image IMAGE [direction=horizontal|vertical]" in out.getvalue()
    assert "direction (horizontal | vertical, default 'horizontal'): which way" in out.getvalue()
    assert len(repl.session.store) == 1  # nothing ran


def test_a_mistyped_tool_name_gets_did_you_mean(tmp_path: Path) -> None:
    repl, _ = _repl(tmp_path, [])
    with pytest.raises(VchatError, match=r"unknown tool 'flip'; did you mean flip_image\? /tools lists them"):
        repl.handle("/tool flip img1")
    assert len(repl.session.store) == 1  # nothing ran
