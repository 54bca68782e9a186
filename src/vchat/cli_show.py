"""`vchat show IMAGE…`: print images inline, like imgcat, with each image's path under it."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

from vchat.errors import ImageError, VchatError
from vchat.images import open_image
from vchat.ui.preview import MODES, render_preview
from vchat.ui.safe import safe_line
from vchat.ui.terminal import Terminal, detect

# Same default as ImageStore: refuse decompression bombs, allow any real photo.
MAX_PIXELS = 64_000_000


def show(
    paths: Sequence[Path],
    preview: str | None = None,
    out: BinaryIO | None = None,
    *,
    err: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    terminal: Terminal | None = None,
    max_pixels: int = MAX_PIXELS,
) -> int:
    """Show each image in `paths` on `out` (stdout), then a line with its path; 1 if any failed.

    `preview` is the --preview value: kitty, iterm, sixel or blocks are written even when
    `out` is not a terminal (for scripts and tests); auto (None) prints only paths then.
    `terminal` skips detection (tests, or a caller that already detected).
    """
    stream = sys.stdout.buffer if out is None else out
    errors = sys.stderr if err is None else err
    term = terminal or detect(preview, env=env, is_tty=_isatty(stream))
    cols, rows = term.box()
    status = 0
    for path in paths:
        try:
            image, _ = open_image(Path(path), max_pixels)
        except ImageError as exc:
            print(f"vchat show: {safe_line(exc)}", file=errors)
            status = 1
            continue
        data = render_preview(image, term.mode, cols=cols, rows=rows, cell_px=term.cell_px, tmux=term.tmux)
        # One write per image, flushed, so a slow terminal shows images as they come.
        # The file name is shown, never obeyed: a name holding ESC must not drive the terminal.
        stream.write(data + safe_line(os.fsdecode(path)).encode("utf-8") + b"\n")
        stream.flush()
    return status


def quick_show(args: Sequence[str]) -> int | None:
    """`vchat show` without the command-line framework: IMAGE… and --preview MODE only.

    Returns the exit code, or None for anything else (--help, an unknown option, no image, a bad mode):
    the full command line then answers, with its usage messages.
    """
    paths: list[Path] = []
    preview: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--preview" and i + 1 < len(args):
            preview, i = args[i + 1], i + 2
        elif arg.startswith("--preview="):
            preview, i = arg.partition("=")[2], i + 1
        elif arg.startswith("-"):
            return None
        else:
            paths.append(Path(arg))
            i += 1
    if not paths or (preview is not None and preview not in ("auto", *MODES)):
        return None
    try:
        return show(paths, None if preview in (None, "auto") else preview)
    except VchatError as exc:
        print(f"error: {safe_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `vchat show … | head`: the reader left, nothing more to say
        return 1


def _isatty(stream: BinaryIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False
