"""Render agent steps, errors and tool listings with rich (the only place that formats for the terminal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from vchat.ui.result_line import result_line
from vchat.ui.safe import safe_line, safe_text

# Rich lays tables out to the console's width; into a pipe that is 80 columns unless told otherwise.
PIPE_WIDTH = 1000

if TYPE_CHECKING:
    from vchat.chat.steps import Step
    from vchat.store.images import ImageRef, ImageStore

ImageHook = Callable[["ImageRef"], None]


def _short(text: str, limit: int = 160) -> str:
    """One line of outside text, control characters neutralised, markup escaped, cut at `limit`."""
    return escape(safe_line(text, limit))


def plural(count: int, word: str) -> str:
    """`1 image`, `2 images`, `0 turns`."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class StepRenderer:
    """Shows each step compactly: tool calls and observations; thoughts only when verbose."""

    def __init__(
        self,
        console: Console,
        *,
        verbose: bool = False,
        show_final: bool = True,
        on_image: ImageHook | None = None,
    ) -> None:
        self.console = console
        self.verbose = verbose
        self.show_final = show_final
        self.on_image = on_image
        self.streamed = False

    def step(self, step: Step) -> None:
        """Print one step."""
        c = self.console
        if step.kind == "action":
            if self.verbose and step.thought:
                c.print(f"[dim italic]thought: {_short(step.thought, 400)}[/]")
            c.print(f"[bold cyan]→ {_short(step.tool or '?', 60)}[/] [dim]{_short(step.input or '', 120)}[/]")
        elif step.kind == "observation":
            failed = step.failure is not None
            style = "yellow" if failed else "green"
            # What the user reads (a Step built with the model's text alone shows that).
            words = step.text or step.observation or ""
            first = words.splitlines()[0] if words else ""
            # A failure is never cut: it often ends with the command that fixes it (`vchat models pull …`).
            shown = escape(safe_line(first)) if failed else escape(result_line(first))
            c.print(f"  [{style}]{shown}[/] [dim]({step.seconds:.1f}s)[/]")
            for ref in step.images:
                if self.on_image is not None:
                    self.on_image(ref)  # the picture first, its handle and path under it
                c.print(f"  [bold]{_short(ref.handle, 40)}[/] [dim]{escape(safe_text(ref.path))}[/]")
        elif step.kind == "notice":
            c.print(f"[yellow]note:[/] {_short(step.text, 1000)}")
        elif step.kind == "retry" and step.reason == "length":
            c.print(f"[yellow]note:[/] {_short(step.text, 300)}")
        elif step.kind == "retry":
            c.print(f"[dim yellow]  (model reply unreadable, asking again: {_short(step.text, 100)})[/]")
        elif step.kind == "final":
            if self.show_final:
                c.print(Text(safe_text(step.text)))
            for name in step.flagged:
                invented = _short(name, 40)
                c.print(f"[yellow]note: the model mentioned {invented}, which does not exist in this session[/]")
        elif step.kind == "error":
            c.print(f"[bold red]error:[/] {_short(step.text, 1000)}")


def listing_console() -> Console:
    """stdout for tables (`vchat tools`, `sessions`, `models`): the terminal's width at a terminal;
    into a pipe or a file, wide enough that no row is wrapped or cut (`| grep`, `| cut` see whole rows)."""
    import os
    import sys

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ  # COLUMNS set: the user chose a width
    return Console(highlight=False, soft_wrap=True, width=PIPE_WIDTH if wide else None)


def print_error(console: Console, message: str) -> None:
    """One-line error, never a traceback; server text in it is shown, never acted on."""
    console.print(f"[bold red]error:[/] {escape(safe_line(message))}", highlight=False, soft_wrap=True)


def print_warning(console: Console, message: str) -> None:
    """One-line warning (e.g. skipped transcript lines), control characters neutralised."""
    console.print(f"[yellow]warning:[/] {escape(safe_line(message))}", highlight=False, soft_wrap=True)


def images_tree(store: ImageStore) -> str:
    """The session's images as an indented lineage tree (children under their first parent)."""
    refs = list(store)
    children: dict[str, list[ImageRef]] = {}
    roots: list[ImageRef] = []
    for ref in refs:
        parent = ref.parents[0] if ref.parents else None
        if parent and parent in store:
            children.setdefault(parent.lower(), []).append(ref)
        else:
            roots.append(ref)
    lines: list[str] = []

    def walk(ref: ImageRef, depth: int) -> None:
        origin = ref.tool or "attached"
        extra = f" +{','.join(ref.parents[1:])}" if len(ref.parents) > 1 else ""
        seed = f" seed={ref.seed}" if ref.seed is not None else ""
        # Handles, tool names and paths may come from a transcript on disk: shown, never acted on.
        lines.append("  " * depth + safe_text(f"{ref.handle}  {origin}{extra}{seed}  {ref.path}").replace("\n", " "))
        for child in children.get(ref.handle.lower(), []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return "\n".join(lines) if lines else "(no images)"
