"""`vchat show IMAGE…`: print images inline, like imgcat, with each image's path under it."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import BinaryIO, TextIO

from vchat.errors import ImageError, VchatError
from vchat.store.reading import open_image
from vchat.ui.preview import MODES, render_preview
from vchat.ui.safe import safe_line
from vchat.ui.terminal import Terminal, detect

# Same default as ImageStore: refuse decompression bombs, allow any real photo.
MAX_PIXELS = 64_000_000


def show(
    paths: Sequence[str | os.PathLike[str]],
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
    preload = _preload(term.mode) if paths else None
    if term.hint and paths:
        print(f"vchat show: {term.hint}", file=errors)
    status = 0
    for path in paths:
        try:
            image, _ = open_image(path, max_pixels)
        except ImageError as exc:
            print(f"vchat show: {safe_line(exc)}", file=errors)
            status = 1
            continue
        data = render_preview(
            image, term.mode, cols=cols, rows=rows, cell_px=term.cell_px, tmux=term.tmux, placeholders=term.placeholders
        )
        # One write per image, flushed, so a slow terminal shows images as they come.
        # The file name is shown, never obeyed: a name holding ESC must not drive the terminal.
        stream.write(data + safe_line(os.fsdecode(path)).encode("utf-8") + b"\n")
        stream.flush()
    if preload is not None:
        preload.join()  # every image failed: let the import end before the interpreter does
    return status


# The encoders that need numpy, and the module to import for each.
_NUMPY_MODES = {"sixel": "vchat.ui.sixel", "blocks": "numpy"}


def _preload(mode: str) -> threading.Thread | None:
    """Import the encoder's numpy on a second core while this one reads and decodes the picture.

    numpy's import is the largest single cost of `vchat show` as a whole process (about as long as
    decoding and quantising a 1024² photo), and the decode and quantiser run in C without the GIL.
    """
    module = _NUMPY_MODES.get(mode)
    if module is None:
        return None
    thread = threading.Thread(target=_import_quietly, args=(module,), name="vchat-show-preload")
    thread.start()
    return thread


def _import_quietly(module: str) -> None:
    # A failed import is not cached: the encoder imports it again and reports the failure itself.
    with contextlib.suppress(Exception):
        importlib.import_module(module)


def quick_show(args: Sequence[str]) -> int | None:
    """`vchat show` without the command-line framework: IMAGE… and --preview MODE only.

    Returns the exit code, or None for anything else (--help, an unknown option, no image, a bad mode):
    the full command line then answers, with its usage messages.
    """
    paths: list[str] = []
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
            paths.append(arg)
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
