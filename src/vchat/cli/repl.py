"""The interactive loop: read a message or a slash command, run it, show the steps and images."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from vchat.chat.calls import find_tool
from vchat.chat.steps import Step
from vchat.cli.repl_input import edit_in_editor, interrupt_cancels, lines_from_stdin, prompt_lines
from vchat.config import Settings
from vchat.errors import Cancelled, VchatError
from vchat.runtime import tiers
from vchat.session import Observers, Session
from vchat.store.images import ImageRef
from vchat.ui.inline import Previewer
from vchat.ui.progress import ProgressReporter, Thinking
from vchat.ui.render import StepRenderer, images_tree, plural, print_error, print_warning
from vchat.ui.safe import safe_line, safe_text
from vchat.ui.stream import AnswerStreamer

SLASH_HELP = {
    "/help": "this list",
    "/attach PATH": "attach an image (or type a path, or @path, in a message)",
    "/images": "the session's images as a lineage tree",
    "/show HANDLE": "preview an image again",
    "/tools [-v]": "list the tools (-v: with their inputs)",
    "/tool NAME ARGS": "run a tool directly, no model needed: IMAGE, then values in order or KEY=VALUE",
    "/model [ARGS]": "show or switch the model: /model gpt-4o-mini · /model URL NAME · /model local · /model none",
    "/edit": "write the next message in $EDITOR",
    "/undo": "forget the last exchange (its images stay on disk)",
    "/clear": "forget the whole conversation (images stay)",
    "/save HANDLE PATH": "copy an image out of the session folder",
    "/preview MODE": "inline previews: auto, kitty, iterm, sixel, blocks, none",
    "/steps [N]": "show or set how many tool steps the model may take per message",
    "/quit": "leave (Ctrl-D works too)",
}
COMMANDS = (*(key.split()[0] for key in SLASH_HELP), "/exit")


class Repl:
    """State of one interactive run: the session, the console and how images are previewed."""

    def __init__(
        self,
        session: Session,
        console: Console,
        show_image: Callable[[ImageRef], None] | None = None,
        previewer: Previewer | None = None,
    ) -> None:
        self.session = session
        self.console = console
        self.previewer = previewer
        self.show_image = show_image or previewer or (lambda ref: None)
        self.renderer = StepRenderer(console, verbose=session.settings.verbose, on_image=self.show_image)
        # Notices about the answer being streamed (cut at the token cap), printed under it when it is whole.
        self._after_answer: list[Step] = []

    # -- messages ----------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Run one input line; returns False when the user wants to leave."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/") and not text.startswith("//"):
            return self.command(text)
        self.message(text.removeprefix("/"))
        return True

    def message(self, text: str) -> None:
        """Send a message to the model and render the turn, streaming the answer as it comes."""
        if self.session.llm is None:
            from vchat.llm.select import connect_hint

            print_error(self.console, f"no language model connected; {connect_hint()} (tools work: /tool NAME ARGS)")
            return
        streamer = AnswerStreamer()
        thinking = Thinking(self.console, enabled=True)
        progress = ProgressReporter(Console(stderr=True), before_start=thinking.stop)

        def on_text(chunk: str) -> None:
            shown = streamer.feed(chunk)
            if shown:
                thinking.stop()
                # The model's text: shown as plain text with control characters neutralised, never markup.
                self.console.print(Text(safe_text(shown)), end="", soft_wrap=True)

        def on_attach(ref: ImageRef) -> None:
            # A path typed in the message: the same feedback as /attach, before the model answers.
            thinking.stop()
            self._announce(ref, ref.source or str(ref.path))
            thinking.start()

        observers = Observers(text=on_text, progress=progress, attach=on_attach)
        thinking.start()
        try:
            with interrupt_cancels(self.session):
                for step in self.session.turn(text, observers):
                    thinking.stop()
                    progress.stop()
                    self._show(step, streamer)
                    if step.kind in ("observation", "retry"):
                        streamer.reset()
                        thinking.start()
        except (KeyboardInterrupt, Cancelled):
            thinking.stop()
            progress.stop()
            if streamer.active:
                self.console.print()
            self.console.print("[yellow]cancelled[/] [dim](finished images are kept)[/]")
        finally:
            thinking.stop()
            progress.stop()
            self._after_answer.clear()

    def _show(self, step: Step, streamer: AnswerStreamer) -> None:
        if step.kind == "notice" and step.reason == "length":
            # About the answer that follows (streamed or not): said under it, once it is whole on screen.
            self._after_answer.append(step)
            return
        if step.kind == "final":
            held, self._after_answer = self._after_answer, []
            self._show_final(step, streamer)
            for notice in held:
                self.renderer.step(notice)
            return
        self.renderer.step(step)

    def _show_final(self, step: Step, streamer: AnswerStreamer) -> None:
        if streamer.active:
            # Most of the answer is on screen already: print only what was held back.
            self.console.print(Text(safe_text(streamer.remainder(step.text))), soft_wrap=True)
            self.renderer.show_final = False
            self.renderer.step(step)
            self.renderer.show_final = True
            return
        self.renderer.step(step)

    # -- commands ------------------------------------------------------------------------
    def command(self, text: str) -> bool:
        """Run a slash command."""
        name, _, rest = text.partition(" ")
        rest = rest.strip()
        name = name.lower()
        if name in ("/quit", "/exit", "/q"):
            return False
        handler = {
            "/help": self._help,
            "/attach": self._attach,
            "/images": lambda _: self.console.print(escape(images_tree(self.session.store))),
            "/show": lambda arg: self.show_image(self.session.store.resolve(arg or self._latest())),
            "/tools": self._tools,
            "/tool": self._tool,
            "/model": self._model,
            "/edit": self._edit,
            "/undo": self._undo,
            "/clear": self._clear,
            "/save": self._save,
            "/preview": self._preview,
            "/steps": self._steps,
        }.get(name)
        if handler is None:
            raise VchatError(f"unknown command {name}; /help lists them (start with // to send a message)")
        handler(rest)
        return True

    def _latest(self) -> str:
        latest = self.session.store.latest()
        if latest is None:
            raise VchatError("no images yet: /attach PATH")
        return latest.handle

    def _help(self, _: str) -> None:
        for key, value in SLASH_HELP.items():
            self.console.print(f"  [cyan]{escape(key):<18}[/] {value}")
        self.console.print(
            "  [dim]  e.g. /tool canny_edges img1 low=50 · /tool flip_image img1 vertical · "
            '/tool generate_image a red car width=640 · quote text that has spaces: object="old car"; '
            "Tab completes argument names; /tools -v lists every input[/]"
        )
        self.console.print("  [dim]Alt-Enter: new line · Tab: complete · Ctrl-R: search history · Ctrl-C: cancel[/]")

    def _attach(self, rest: str) -> None:
        if not rest:
            raise VchatError("usage: /attach PATH")
        path = " ".join(shlex.split(rest)) if rest[0] in "\"'" else rest.replace("\\ ", " ")
        ref = self.session.attach(Path(path).expanduser())
        self._announce(ref, path)

    def _announce(self, ref: ImageRef, shown_path: str) -> None:
        """`attached img1 640x480  photo.jpg` and a preview, for /attach, -i and paths typed in a message."""
        note = escape(f" ({safe_line(ref.note)})") if ref.note else ""
        where = escape(safe_line(shown_path))  # the user's file name: shown, never acted on
        self.console.print(f"attached [bold]{ref.handle}[/] {ref.width}x{ref.height}{note}  [dim]{where}[/]")
        self.show_image(ref)

    def _tool(self, rest: str) -> None:
        from vchat.chat.tool_args import is_legacy, parse_tool_args, usage

        tool, _, raw = rest.partition(" ")
        if not tool:
            raise VchatError("usage: /tool NAME ARGS, e.g. /tool canny_edges img1 low=50")
        known = find_tool(self.session.sources.tools(tool), tool, lister="/tools")  # MCP servers start if needed
        if not raw.strip() and any(spec.required for spec in known.inputs):
            # `/tool NAME` alone: how to call it, rather than an error about a missing input.
            self.console.print(f"usage: {escape(usage(type(known)))}")
            for spec in known.inputs:
                self.console.print(f"  [dim]{escape(spec.describe())}[/]")
            return
        # `img1 low=50` as a shell user types it; JSON and `img1, 50` as the model writes them.
        named = parse_tool_args(type(known), raw) if known is not None and not is_legacy(raw) else None
        progress = ProgressReporter(Console(stderr=True))
        try:
            with interrupt_cancels(self.session, tool_phase=True):
                step = self.session.run_tool(tool, raw.strip(), named=named, observers=Observers(progress=progress))
        except (KeyboardInterrupt, Cancelled):
            progress.stop()  # first: stopping a transient bar erases the lines printed under it
            self.console.print("[yellow]cancelled[/] [dim](no image was written)[/]")
            return
        finally:
            progress.stop()
        self.renderer.step(Step("action", tool=step.tool, input=step.input))
        self.renderer.step(step)

    def _model(self, rest: str) -> None:
        from vchat.llm.switch import USAGE, switch

        if not rest:
            llm = self.session.llm
            self.console.print(Text(safe_line(llm.name) if llm is not None else "no language model connected"))
            self.console.print(f"[dim]switch with {escape(USAGE)}[/]")
            return
        try:
            args = shlex.split(rest)
        except ValueError as exc:
            raise VchatError(f"/model: {exc}") from None
        thinking = Thinking(self.console, enabled=True)
        thinking.start("connecting…")
        try:
            llm, settings = switch(self.session.settings, args, self.session.llm)
        finally:
            thinking.stop()
        # The history stays: the next message goes to the new model with the conversation so far.
        self.session.llm = llm
        for name in ("llm", "model", "base_url"):
            setattr(self.session.settings, name, getattr(settings, name))
        self.session.settings.models = settings.models
        # The choice itself, so that --resume reconnects where the chat left off; never a secret (an address
        # holding user:password@ is not kept, and the session comes back on its settings instead).
        from urllib.parse import urlsplit

        secret = bool(settings.base_url and "@" in urlsplit(settings.base_url).netloc)
        choice = None if secret else {"llm": settings.llm, "model": settings.model, "base_url": settings.base_url}
        self.session.model_choice = choice  # a session not yet on disk writes it in its first record
        if self.session.transcript.path.exists():
            self.session.transcript.write(
                "model", model=llm.name if llm is not None else None, **({"choice": choice} if choice else {})
            )
        if llm is None:
            self.console.print("language model disconnected; tools still work: /tool NAME ARGS")
        else:
            self.console.print(f"connected: [bold]{escape(safe_line(llm.name))}[/]")

    def _edit(self, _: str) -> None:
        text = edit_in_editor("")
        if text.strip():
            self.console.print(f"[dim]› {escape(safe_text(text.strip()))}[/]")
            self.message(text.strip())

    def _undo(self, _: str) -> None:
        if not self.session.forget(last=True):
            raise VchatError("nothing to undo")
        self.console.print("forgot the last exchange (its images stay in the session)")

    def _clear(self, _: str) -> None:
        self.session.forget(last=False)
        self.console.print("conversation cleared; images kept")

    def _save(self, rest: str) -> None:
        parts = shlex.split(rest)
        if len(parts) != 2:
            raise VchatError("usage: /save HANDLE PATH")
        ref = self.session.store.resolve(parts[0])
        target = Path(parts[1]).expanduser()
        if target.is_dir():
            target = target / ref.path.name
        if target.exists():
            raise VchatError(f"{target} exists; choose another name")
        if not target.parent.is_dir():
            raise VchatError(f"folder {target.parent} does not exist; create it or choose another path")
        try:
            shutil.copyfile(ref.path, target)
        except OSError as exc:
            raise VchatError(f"cannot save to {target}: {exc.strerror or exc}") from None
        self.console.print(Text(f"saved {ref.handle} to {safe_line(target)}"))

    def _tools(self, arg: str) -> None:
        # What the model is offered (the families, old names in brackets), as `vchat tools` lists it.
        from vchat.tools.base import offered
        from vchat.ui.tool_list import tool_lines

        shown = offered([type(t) for t in self.session.sources.tools().values()])  # MCP servers start here
        for line in tool_lines(shown, verbose=arg in ("-v", "--verbose"), width=self.console.width):
            self.console.print(Text(line))

    def _steps(self, rest: str) -> None:
        if not rest:
            self.console.print(f"up to {self.session.settings.max_steps} tool steps per message; /steps N changes it")
            return
        if not rest.isdigit() or not 1 <= int(rest) <= 100:
            raise VchatError("usage: /steps N, a number of tool steps from 1 to 100")
        self.session.settings.max_steps = int(rest)
        self.console.print(f"up to {rest} tool steps per message")

    def _preview(self, rest: str) -> None:
        from vchat.config import PREVIEW_MODES, PreviewMode

        if rest not in PREVIEW_MODES:
            raise VchatError(f"preview mode must be one of {', '.join(PREVIEW_MODES)}")
        self.session.settings.preview = cast(PreviewMode, rest)
        if self.previewer is not None:
            self.previewer.set_mode(rest)
            self.console.print(f"previews: {self.previewer.mode} ({self.previewer.terminal.reason})")
        else:
            self.console.print(f"previews: {rest}")


def run_repl(
    settings: Settings,
    images: list[Path],
    resume: str | None = None,
    preview_flag: str | None = None,
    *,
    llm_flags: bool = False,
) -> int:
    """Interactive chat; returns the exit code (`llm_flags`: --llm, --model or --base-url was given)."""
    from vchat.cli.wiring import build_session
    from vchat.llm.select import connect_hint

    console = Console(highlight=False)
    session, warning = build_session(settings, llm="optional", resume=resume, llm_flags=llm_flags)
    llm = session.llm
    if warning:
        print_warning(console, warning)
    if resume is not None:
        turns = plural(len(session.turns), "turn")
        console.print(f"resumed session {session.id}: {plural(len(session.store), 'image')}, {turns}")
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    previewer = Previewer(console, preview_flag or ("auto" if not sys.stdout.isatty() else settings.preview))
    repl = Repl(session, console, previewer=previewer)
    console.print(f"[bold]vchat[/] — {escape(safe_line(llm.name)) if llm else 'no language model'}; /help for commands")
    if llm is None:
        console.print(f"[dim]{escape(connect_hint())}[/]")
    first_use = llm.notice() if llm is not None else None
    if first_use:
        console.print(f"[dim]{escape(first_use)}[/]")
    tiers.on_first_choice(lambda line: console.print(f"[dim]{escape(line)}[/]"))  # `auto` says its choice at first use
    for path in images:
        try:
            repl.command(f"/attach {path}")
        except VchatError as exc:
            print_error(console, str(exc))
    lines = prompt_lines(session, COMMANDS) if interactive else lines_from_stdin()
    try:
        for line in lines:
            try:
                if not repl.handle(line):
                    break
            except VchatError as exc:
                print_error(console, str(exc))
            except KeyboardInterrupt:
                console.print("[yellow]cancelled[/]")
            except Exception as exc:  # keep the session alive: one line, traceback only with --debug
                if settings.debug:
                    console.print_exception()
                print_error(console, f"{type(exc).__name__}: {exc}")
    finally:
        # Quitting a chat in which nothing happened (only a message the server never answered, a tool
        # call that failed) leaves no session behind for `vchat sessions` to list and `--resume` to pick.
        discarded = session.came_to_nothing() and session.discard()
        if not discarded:
            session.close()
        if not discarded and session.transcript.path.exists():
            # The index makes `--resume ID` work from any folder; without it, name the output folder too.
            where = "" if session.indexed else f"--out {shlex.quote(str(session.folder.parent))} "
            console.print(
                f"[dim]session {session.id}: {plural(len(session.store), 'image')} in "
                f"{escape(safe_line(session.folder))}; "
                f"continue (from any folder) with: vchat {escape(where)}--resume {session.id}[/]",
                soft_wrap=True,  # a command to copy must never be broken across lines
            )
    return 0
