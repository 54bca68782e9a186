"""Tab completion in the REPL: slash commands, tool names, image handles, file paths."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from vchat.store.reading import IMAGE_SUFFIXES


def complete_path(fragment: str) -> Iterator[tuple[str, str]]:
    """(completed text, display) for files and folders matching fragment (`~` and spaces allowed)."""
    expanded = os.path.expanduser(fragment) if fragment else ""
    folder, _, prefix = expanded.rpartition("/")
    base = Path(folder or ("/" if expanded.startswith("/") else "."))
    try:
        entries = sorted(base.iterdir(), key=lambda p: p.name.lower())
    except OSError:
        return
    shown_folder = fragment[: len(fragment) - len(prefix)]
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        is_dir = entry.is_dir()
        if not is_dir and not entry.name.lower().endswith(IMAGE_SUFFIXES):
            continue
        name = entry.name + ("/" if is_dir else "")
        yield shown_folder + name, name


class VchatCompleter(Completer):
    """Completes what makes sense where the cursor is."""

    def __init__(
        self,
        commands: Iterable[str],
        tool_names: Callable[[], Iterable[str]],
        handles: Callable[[], Iterable[str]],
        arguments: Callable[[str, str], Iterable[tuple[str, str]]] | None = None,
    ) -> None:
        """`arguments(tool, word)`: completions of one `/tool` argument as (text, shown); the CLI wires it up."""
        self.commands = sorted(commands)
        self.tool_names = tool_names
        self.handles = handles
        self.arguments = arguments

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        """Completions for the text before the cursor."""
        text = document.text_before_cursor
        if text.startswith("/") and " " not in text:
            for command in self.commands:
                if command.startswith(text):
                    yield Completion(command, start_position=-len(text))
            return
        if text.startswith("/attach "):
            fragment = text[len("/attach ") :]
            for value, shown in complete_path(fragment):
                yield Completion(value, start_position=-len(fragment), display=shown)
            return
        if text.startswith("/tool ") and text.count(" ") == 1:
            fragment = text[len("/tool ") :]
            for name in sorted(self.tool_names()):
                if name.startswith(fragment):
                    yield Completion(name, start_position=-len(fragment))
            return
        if text.startswith("/tool ") and self.arguments is not None:
            yield from self._tool_arguments(text)
            return
        at = text.rfind("@")
        if at >= 0 and (at == 0 or text[at - 1].isspace()) and " " in text[at:]:
            # `@My Photos/ca`: a path with spaces, recognised when its folder exists.
            fragment = text[at + 1 :]
            folder = os.path.dirname(os.path.expanduser(fragment))
            if folder and os.path.isdir(folder):
                for value, shown in complete_path(fragment):
                    yield Completion(value, start_position=-len(fragment), display=shown)
                return
        word = text.split(" ")[-1] if text else ""
        if word.startswith("@"):
            fragment = word[1:]
            for value, shown in complete_path(fragment):
                yield Completion(value, start_position=-len(fragment), display=shown)
            return
        if word.lower().startswith("i") or text.startswith("/show "):
            for handle in self.handles():
                if handle.startswith(word.lower()) and handle != word:
                    yield Completion(handle, start_position=-len(word))

    def _tool_arguments(self, text: str) -> Iterator[Completion]:
        """After `/tool NAME `: the tool's argument names (`low=`), choices after `=`, image handles."""
        assert self.arguments is not None
        word = text.split(" ")[-1]
        for value, shown in self.arguments(text.split()[1], word):
            yield Completion(value, start_position=-len(word), display=shown)
        if "=" not in word:
            for handle in self.handles():
                if handle.startswith(word.lower()) and handle != word:
                    yield Completion(handle, start_position=-len(word))
