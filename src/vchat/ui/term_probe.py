"""The real probes behind terminal detection: the tmux server, TIOCGWINSZ and one query round trip to the tty."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from vchat.ui.term_records import DA1_RE, QUERY_TIMEOUT, TMUX_TIMEOUT, TmuxState, WinSize

if TYPE_CHECKING:
    # Imported where used: `vchat show` into a pipe asks neither tmux nor the terminal.
    import subprocess


def probe_tmux(
    run: Callable[..., subprocess.CompletedProcess[str]] | None = None,
    timeout: float = TMUX_TIMEOUT,
) -> TmuxState:
    """Ask the tmux server whether passthrough is allowed and which terminal the client is (`run`: subprocess.run)."""
    import subprocess

    run = subprocess.run if run is None else run

    def ask(*args: str) -> str:
        try:
            done = run(["tmux", *args], capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    # "on" lets visible panes pass escapes through, "all" invisible ones too (tmux ≥ 3.3).
    allowed = ask("show", "-gv", "allow-passthrough") in ("on", "all")
    client = ask("display-message", "-p", "#{client_termname}\t#{client_termtype}")
    term, _, kind = client.partition("\t")
    return TmuxState(passthrough=allowed, client_term=term, client_type=kind)


def read_winsize(fd: int | None = None) -> WinSize | None:
    """TIOCGWINSZ on `fd` (stdout by default), or None when it is not a terminal."""
    try:
        import fcntl
        import struct
        import termios
    except ImportError:  # Windows
        return None
    if fd is None:
        try:
            fd = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):
            return None
    try:
        raw = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols, xpixel, ypixel = struct.unpack("HHHH", raw)
    if cols == 0 or rows == 0:
        return None
    return WinSize(cols, rows, xpixel, ypixel)


def tty_query(data: bytes, timeout: float = QUERY_TIMEOUT, *, path: str = "/dev/tty") -> bytes:
    """Write `data` to the controlling terminal (`path`) and read its replies until DA1 or `timeout`."""
    try:
        import select
        import termios
        import time
        import tty
    except ImportError:  # Windows
        return b""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return b""
    reply = b""
    try:
        saved = termios.tcgetattr(fd)
        try:
            # No echo, no line buffering: replies arrive as bytes and never show on screen.
            tty.setcbreak(fd, termios.TCSANOW)
            os.write(fd, data)
            deadline = time.monotonic() + timeout
            while not DA1_RE.search(reply):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    break
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                reply += chunk
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    except (OSError, termios.error):
        pass
    finally:
        os.close(fd)
    return reply
