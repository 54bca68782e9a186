"""The interactive loop: read a message or a slash command, run it, show the steps and images."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console

from vchat.config import Settings
from vchat.errors import Cancelled, VchatError
from vchat.images import ImageRef
from vchat.session import Session
from vchat.ui.render import StepRenderer, images_tree, print_error, tools_table

SLASH_HELP = {
    "/help": "this list",
    "/attach PATH": "attach an image (or type a path, or @path, in a message)",
    "/images": "the session's images as a lineage tree",
    "/show HANDLE": "preview an image again",
    "/tools": "list the tools",
    "/tool NAME ARGS": "run a tool directly, e.g. /tool canny_edges img1 (no model needed)",
    "/model": "show the connected language model",
    "/clear": "forget the conversation (images stay)",
    "/preview MODE": "inline previews: auto, kitty, iterm, sixel, blocks, none",
    "/quit": "leave (Ctrl-D works too)",
}


class Repl:
    """State of one interactive run: the session, the console and how images are previewed."""

    def __init__(self, session: Session, console: Console, show_image: Callable[[ImageRef], None] | None = None):
        self.session = session
        self.console = console
        self.show_image = show_image or (lambda ref: None)
        self.renderer = StepRenderer(console, verbose=session.settings.verbose, on_image=self.show_image)

    # -- commands ------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Run one input line; returns False when the user wants to leave."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/"):
            return self.command(text)
        self.message(text)
        return True

    def message(self, text: str) -> None:
        """Send a message to the model and render the turn."""
        if self.session.llm is None:
            from vchat.llm.select import connect_hint

            print_error(self.console, f"no language model connected; {connect_hint()} (tools work: /tool NAME ARGS)")
            return
        try:
            for step in self.session.turn(text):
                self.renderer.step(step)
        except (KeyboardInterrupt, Cancelled):
            self.session.cancel_event.set()
            self.console.print("[yellow]cancelled[/] [dim](finished images are kept)[/]")

    def command(self, text: str) -> bool:
        """Run a slash command."""
        name, _, rest = text.partition(" ")
        rest = rest.strip()
        name = name.lower()
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/help":
            for key, value in SLASH_HELP.items():
                self.console.print(f"  [cyan]{key:<16}[/] {value}")
        elif name == "/attach":
            if not rest:
                raise VchatError("usage: /attach PATH")
            path = " ".join(shlex.split(rest)) if rest[0] in "\"'" else rest
            ref = self.session.attach(Path(path).expanduser())
            note = f" ({ref.note})" if ref.note else ""
            self.console.print(f"attached [bold]{ref.handle}[/] {ref.width}x{ref.height}{note}")
            self.show_image(ref)
        elif name == "/images":
            self.console.print(images_tree(self.session.store), highlight=False)
        elif name == "/show":
            self.show_image(self.session.store.resolve(rest or "img1"))
        elif name == "/tools":
            self.console.print(tools_table([type(t) for t in self.session.tools.values()]))
        elif name == "/tool":
            tool, _, raw = rest.partition(" ")
            if not tool:
                raise VchatError("usage: /tool NAME ARGS, e.g. /tool canny_edges img1")
            self.renderer.step(self.session.run_tool(tool, raw.strip()))
        elif name == "/model":
            llm = self.session.llm
            self.console.print(llm.name if llm is not None else "no language model connected")
        elif name == "/clear":
            self.session.history.clear()
            self.console.print("conversation cleared; images kept")
        elif name == "/preview":
            self.set_preview(rest)
        else:
            raise VchatError(f"unknown command {name}; /help lists them")
        return True

    def set_preview(self, mode: str) -> None:
        """Switch the preview mode for this run."""
        from vchat.config import PREVIEW_MODES

        if mode not in PREVIEW_MODES:
            raise VchatError(f"preview mode must be one of {', '.join(PREVIEW_MODES)}")
        self.session.settings.preview = mode
        self.console.print(f"previews: {mode}")


def _lines_from_stdin() -> Iterable[str]:
    for line in sys.stdin:
        yield line.rstrip("\n")


def run_repl(settings: Settings, images: list[Path], resume: str | None = None) -> int:
    """Interactive chat; returns the exit code."""
    from vchat.llm.select import connect_hint, select_llm
    from vchat.tools.registry import all_tools

    console = Console(highlight=False)
    llm = select_llm(settings)
    if resume is not None:
        session, warning = Session.resume(settings, all_tools(), llm, None if resume == "latest" else resume)
        if warning:
            console.print(f"[yellow]warning:[/] {warning}")
        console.print(f"resumed session {session.id}: {len(session.store)} images, {len(session.history) // 2} turns")
    else:
        session = Session(settings, all_tools(), llm)
    repl = Repl(session, console)
    console.print(f"[bold]vchat[/] — {llm.name if llm else 'no language model'}; /help for commands")
    if llm is None:
        console.print(f"[dim]{connect_hint()}[/]")
    for path in images:
        try:
            repl.command(f"/attach {path}")
        except VchatError as exc:
            print_error(console, str(exc))
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    lines = _prompt_lines(settings) if interactive else _lines_from_stdin()
    try:
        for line in lines:
            try:
                if not repl.handle(line):
                    break
            except VchatError as exc:
                print_error(console, str(exc))
            except Exception as exc:  # keep the session alive: one line, traceback only with --debug
                if settings.debug:
                    console.print_exception()
                print_error(console, f"{type(exc).__name__}: {exc}")
    finally:
        session.close()
    return 0


def _prompt_lines(settings: Settings) -> Iterable[str]:
    """Lines from prompt_toolkit with history; Ctrl-C on an empty line twice or Ctrl-D exits."""
    from platformdirs import user_data_dir
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    data = Path(user_data_dir("vchat", appauthor=False))
    data.mkdir(parents=True, exist_ok=True)
    prompt: PromptSession[str] = PromptSession(history=FileHistory(str(data / "history")))
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
