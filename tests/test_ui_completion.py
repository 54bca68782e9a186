"""Tab completion: slash commands, tool names, image handles, paths after /attach and @ (spaces, ~)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from tests.helpers import write_photo

from vchat.chat.tool_args import completions
from vchat.cli.repl import COMMANDS
from vchat.ui.completion import VchatCompleter


def _complete(text: str) -> list[str]:
    completer = VchatCompleter(COMMANDS, lambda: ["canny_edges", "crop_image"], lambda: ["img1", "img2", "img10"])
    doc = Document(text, len(text))
    return [c.text for c in completer.get_completions(doc, CompleteEvent(completion_requested=True))]


def test_slash_commands() -> None:
    assert _complete("/at") == ["/attach"]
    assert set(_complete("/to")) == {"/tool", "/tools"}


def test_tool_names_after_tool() -> None:
    assert _complete("/tool c") == ["canny_edges", "crop_image"]
    assert _complete("/tool cr") == ["crop_image"]


def test_handles_in_messages_and_show() -> None:
    assert _complete("make img1") == ["img10"]
    assert _complete("/show img") == ["img1", "img2", "img10"]


def test_paths_with_spaces_and_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_photo(tmp_path / "My Photos", "the cat.png")
    (tmp_path / "My Photos" / "notes.txt").write_text("not an image")
    assert _complete("/attach ~/My") == ["~/My Photos/"]
    assert _complete("/attach ~/My Photos/") == ["~/My Photos/the cat.png"]
    monkeypatch.chdir(tmp_path)
    assert _complete("edit @My Photos/t") == ["My Photos/the cat.png"]
    assert _complete("edit @My Photos/the cat.png and @My") == ["My Photos/"]
    assert _complete("edit @My") == ["My Photos/"]


def _complete_tool_args(text: str) -> list[str]:
    from vchat.tools.registry import TOOL_CLASSES

    classes = {tool.name: tool for tool in TOOL_CLASSES}
    completer = VchatCompleter(
        COMMANDS,
        lambda: list(classes),
        lambda: ["img1", "img2"],
        arguments=lambda name, word: completions(classes[name], word) if name in classes else (),
    )
    doc = Document(text, len(text))
    return [c.text for c in completer.get_completions(doc, CompleteEvent(completion_requested=True))]


def test_tool_argument_names_choices_and_handles() -> None:
    assert _complete_tool_args("/tool canny_edges img1 l") == ["low="]
    assert _complete_tool_args("/tool canny_edges img1 ") == ["low=", "high=", "img1", "img2"]
    assert _complete_tool_args("/tool canny_edges i") == ["img1", "img2"]
    assert _complete_tool_args("/tool flip_image img1 direction=v") == ["direction=vertical"]
    assert _complete_tool_args("/tool flip_image img1 direction=") == ["direction=horizontal", "direction=vertical"]
    assert _complete_tool_args("/tool no_such_tool img1 l") == []
