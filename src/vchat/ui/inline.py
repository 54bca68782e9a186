"""Show session images inline in the terminal, in the mode it supports (detected once)."""

from __future__ import annotations

from rich.console import Console

from vchat.store.refs import ImageRef
from vchat.ui.render import print_error


class Previewer:
    """Callable that previews an ImageRef; mode `auto` detects, any other mode is used as given."""

    def __init__(self, console: Console, mode: str) -> None:
        self.console = console
        self.set_mode(mode)

    def set_mode(self, mode: str) -> None:
        """Detect the terminal for `auto`, or take the mode as given (`/preview MODE`)."""
        from vchat.ui.terminal import detect

        self.terminal = detect(None if mode == "auto" else mode)
        self.mode = self.terminal.mode
        self.hinted = False

    def __call__(self, ref: ImageRef) -> None:
        """Print the image inline; nothing in mode `none` (the caption line already names the file)."""
        if self.mode == "none":
            return
        if self.terminal.hint and not self.hinted:
            # Once per detection: a worse preview than the terminal could show, and the one step that fixes it.
            self.hinted = True
            self.console.print(f"preview: {self.terminal.hint}", style="yellow", markup=False, highlight=False)
        from PIL import Image

        from vchat.ui.preview import render_preview

        cols, rows = self.terminal.box(max_rows=20)
        try:
            with Image.open(ref.path) as img:
                img.load()
                data = render_preview(
                    img,
                    self.mode,
                    cols=min(cols, 80),
                    rows=rows,
                    cell_px=self.terminal.cell_px,
                    tmux=self.terminal.tmux,
                    placeholders=self.terminal.placeholders,
                )
        except OSError as exc:
            print_error(self.console, f"cannot preview {ref.handle}: {exc}")
            return
        self.console.file.flush()
        out = getattr(self.console.file, "buffer", None)
        if out is None:
            self.console.file.write(data.decode("utf-8", "replace"))
        else:
            out.write(data)
            out.flush()
