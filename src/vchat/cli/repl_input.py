"""How the REPL reads and is interrupted: the prompt with completion, piped stdin, $EDITOR, Ctrl-C in a turn."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from vchat.errors import VchatError
from vchat.session import Session


@contextmanager
def interrupt_cancels(session: Session, tool_phase: bool = False) -> Iterator[None]:
    """Ctrl-C during a turn: stop the model's stream at once; stop a tool at its next step.

    A tool is told through the session's cancel flag so it can stop between denoising steps
    and leave no half-written file; a second Ctrl-C interrupts it outright.
    """
    presses = 0

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        session.cancel_event.set()
        if presses > 1 or not (tool_phase or session.phase == "tool"):
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (embedded use): leave Ctrl-C as it is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def edit_in_editor(initial: str) -> str:
    """Let the user write a message in $VISUAL / $EDITOR (vi when neither is set)."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".md", prefix="vchat-", delete=False) as fh:
        fh.write(initial)
        path = fh.name
    try:
        result = subprocess.run([*shlex.split(editor), path], check=False)
        if result.returncode != 0:
            raise VchatError(f"{editor} exited with {result.returncode}; nothing sent")
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VchatError(f"editor {editor!r} not found; set $EDITOR") from None
    finally:
        Path(path).unlink(missing_ok=True)


def lines_from_stdin() -> Iterable[str]:
    """Lines piped in (not a terminal): one message or command each."""
    for line in sys.stdin:
        yield line.rstrip("\n")


def prompt_lines(session: Session, commands: Sequence[str]) -> Iterable[str]:
    """Lines from prompt_toolkit; Ctrl-C on an empty line twice, or Ctrl-D, exits."""
    from platformdirs import user_data_dir
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.key_binding.key_processor import KeyPressEvent

    from vchat.chat.tool_args import completions
    from vchat.ui.completion import VchatCompleter

    data = Path(user_data_dir("vchat", appauthor=False))
    data.mkdir(parents=True, exist_ok=True)
    bindings = KeyBindings()

    @bindings.add("escape", "enter")  # Alt-Enter / Esc-Enter: a new line instead of sending
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    completer = VchatCompleter(
        commands,
        tool_names=lambda: list(session.tools),
        handles=lambda: [ref.handle for ref in session.store],
        arguments=lambda name, word: completions(type(session.tools[name]), word) if name in session.tools else (),
    )
    prompt: PromptSession[str] = PromptSession(
        history=FileHistory(str(data / "history")),
        completer=completer,
        complete_while_typing=False,
        key_bindings=bindings,
        enable_history_search=False,  # Ctrl-R reverse search stays available
        prompt_continuation="  ",
    )
    interrupts = 0
    while True:
        try:
            line = prompt.prompt("› ")
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts >= 2:
                return
            print("(Ctrl-C again or Ctrl-D to quit)")
            continue
        except EOFError:
            return
        interrupts = 0
        yield line
