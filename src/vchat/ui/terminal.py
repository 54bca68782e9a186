"""Terminal capabilities: which inline image protocol to use, the size in cells and the cell size."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, NamedTuple

from vchat.errors import ConfigError

if TYPE_CHECKING:
    # Imported where used: `vchat show` into a pipe asks neither tmux nor the terminal.
    import subprocess

MODES: Final = ("kitty", "iterm", "sixel", "blocks", "none")
GRAPHICS: Final = ("kitty", "iterm", "sixel")
DEFAULT_CELL: Final = (10, 20)
# Generous: the reply may cross an ssh link, and we only wait when a terminal is silent,
# since every terminal answers DA1 (the sentinel) as soon as it has read the batch.
QUERY_TIMEOUT: Final = 1.0
TMUX_TIMEOUT: Final = 0.5

# The kitty query draws nothing: a 1×1 RGB image sent with a=q is checked, answered and dropped.
KITTY_QUERY: Final = b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
CELL_QUERY: Final = b"\x1b[16t"  # cell size in pixels: CSI 6 ; height ; width t
DA1_QUERY: Final = b"\x1b[c"  # primary device attributes: CSI ? 6x ; … c; 4 means sixel
FULL_QUERY: Final = KITTY_QUERY + CELL_QUERY + DA1_QUERY

_DA1_RE = re.compile(rb"\x1b\[\?([0-9;]*)c")
_KITTY_RE = re.compile(rb"\x1b_Gi=31;([^\x1b]*)\x1b\\")
_CELL_RE = re.compile(rb"\x1b\[6;(\d+);(\d+)t")

QueryFn = Callable[[bytes, float], bytes]

# Variables a terminal sets to say which it is (TERM and TERM_PROGRAM aside).
_IDENTITY_VARS: Final = (
    "KITTY_WINDOW_ID",
    "GHOSTTY_RESOURCES_DIR",
    "LC_TERMINAL",
    "KONSOLE_VERSION",
    "WT_SESSION",
    "MLTERM",
)


# Immutable records as NamedTuples rather than frozen dataclasses: `vchat show` builds these classes
# on every start, and a frozen dataclass costs several exec() calls (plus importing dataclasses).


class QueryReply(NamedTuple):
    """What a terminal said to the batched query."""

    answered: bool  # the DA1 sentinel came back
    kitty: bool
    sixel: bool
    cell_px: tuple[int, int] | None


class TmuxState(NamedTuple):
    """What tmux says about itself and the terminal it is attached to."""

    passthrough: bool
    client_term: str = ""  # the outer terminal's TERM (#{client_termname})
    client_type: str = ""  # its XTVERSION name, e.g. "kitty(0.35.2)" (#{client_termtype}, tmux ≥ 3.3)


class WinSize(NamedTuple):
    """TIOCGWINSZ: size in cells and, when the terminal reports it, in pixels (else 0)."""

    cols: int
    rows: int
    xpixel: int = 0
    ypixel: int = 0


class Terminal(NamedTuple):
    """The resolved preview setup: protocol, size in cells, cell size, tmux wrapping, and why."""

    mode: str
    cols: int
    rows: int
    cell_px: tuple[int, int]
    tmux: bool  # graphics must go through tmux passthrough (preview.render_preview(tmux=…))
    reason: str  # what decided the mode, for `vchat doctor` and --debug

    def box(self, max_rows: int | None = None) -> tuple[int, int]:
        """A preview box (cols, rows): the full width, leaving two rows for the caption and prompt."""
        rows = max(1, self.rows - 2)
        if max_rows is not None:
            rows = max(1, min(rows, max_rows))
        return max(1, self.cols), rows


class Hint(NamedTuple):
    """What the environment says: a mode outright, or what to make of the terminal's answer."""

    mode: str | None  # None: ask the terminal
    reason: str
    fallback: str = "blocks"  # when the terminal cannot be asked or does not answer
    on_sixel: str = "sixel"  # what a sixel-capable answer selects
    prefer_sixel: bool = False  # when both kitty and sixel answer


# --------------------------------------------------------------------------- parsing


def parse_reply(data: bytes) -> QueryReply:
    """Read the replies to FULL_QUERY (in any order, mixed with other bytes)."""
    da1 = _DA1_RE.search(data)
    attrs = da1.group(1).split(b";") if da1 else []
    kitty = _KITTY_RE.search(data)
    cell = _CELL_RE.search(data)
    cell_px = None
    if cell:
        height, width = int(cell.group(1)), int(cell.group(2))
        if width > 0 and height > 0:
            cell_px = (width, height)
    return QueryReply(
        answered=da1 is not None,
        kitty=kitty is not None and kitty.group(1).startswith(b"OK"),
        sixel=b"4" in attrs,
        cell_px=cell_px,
    )


def normalise_mode(value: str | None, origin: str) -> str | None:
    """A validated preview mode, or None for auto/unset; `origin` names the source in errors."""
    if value is None:
        return None
    mode = value.strip().lower()
    if mode in ("", "auto"):
        return None
    if mode == "iterm2":
        mode = "iterm"
    if mode not in MODES:
        raise ConfigError(f"{origin}: preview must be one of auto, {', '.join(MODES)}, not {value!r}")
    return mode


# --------------------------------------------------------------------------- environment hints


def env_hint(env: Mapping[str, str]) -> Hint:
    """The preview mode the environment names outright, or which question to ask the terminal."""
    term = env.get("TERM", "")
    program = env.get("TERM_PROGRAM", "")
    if env.get("KITTY_WINDOW_ID") or term == "xterm-kitty":
        return Hint("kitty", "kitty")
    if program.lower() == "ghostty" or term == "xterm-ghostty" or env.get("GHOSTTY_RESOURCES_DIR"):
        return Hint("kitty", "Ghostty")
    if program == "WezTerm":
        # WezTerm speaks both, but its kitty graphics are off unless enable_kitty_graphics is set.
        return Hint("iterm", "WezTerm")
    if program == "iTerm.app" or env.get("LC_TERMINAL") == "iTerm2":
        # LC_TERMINAL is what survives ssh (iTerm2 sends it; sshd accepts LC_*).
        return Hint("iterm", "iTerm2")
    if program == "vscode":
        # VS Code's xterm.js shows images only with terminal.integrated.enableImages (off by
        # default). When it is on, DA1 lists sixel, and the same image addon also reads iTerm2
        # images, which we prefer: a lossless PNG instead of a 256-colour palette.
        return Hint(None, "VS Code", on_sixel="iterm")
    if term.startswith("foot"):
        return Hint("sixel", "foot")
    if env.get("MLTERM") or term.startswith("mlterm"):
        return Hint("sixel", "mlterm")
    if env.get("KONSOLE_VERSION"):
        # Konsole ≥ 22.04 has complete sixel and only a subset of the kitty protocol, so sixel
        # is preferred; the query confirms it (the version says nothing of a remote host).
        version = env["KONSOLE_VERSION"]
        new = version.isdigit() and int(version) >= 220400
        return Hint(None, "Konsole", fallback="sixel" if new else "blocks", prefer_sixel=True)
    if env.get("WT_SESSION"):
        # Windows Terminal draws sixel since 1.22 and has no version variable: ask DA1.
        return Hint(None, "Windows Terminal")
    if term == "dumb":
        return Hint("none", "TERM=dumb")
    if term == "linux":
        # The Linux console has no graphics protocol; a query would only print noise.
        return Hint("blocks", "Linux console")
    if program == "Apple_Terminal":
        return Hint("blocks", "Apple Terminal")
    # xterm (sixel only when built and configured for it), mintty, VTE, Alacritty…: ask.
    return Hint(None, f"TERM={term}" if term else "unknown terminal")


def in_tmux(env: Mapping[str, str]) -> bool:
    """Whether output goes through tmux (or a screen-like multiplexer posing as one)."""
    term = env.get("TERM", "")
    return bool(env.get("TMUX")) or term.startswith(("tmux", "screen"))


def _outer_env(env: Mapping[str, str], state: TmuxState) -> dict[str, str]:
    """The environment as if seen by the terminal tmux runs in: tmux replaces TERM and TERM_PROGRAM."""
    dropped = {"TERM", "TERM_PROGRAM", "TMUX"}
    if state.client_type:
        # tmux ≥ 3.3 knows the attached terminal's own name (XTVERSION); variables inherited
        # by the tmux server may be left over from a terminal that has since detached.
        dropped |= set(_IDENTITY_VARS)
    outer = {k: v for k, v in env.items() if k not in dropped}
    if state.client_term:
        outer["TERM"] = state.client_term
    kind = state.client_type.lower()
    for prefix, program in (("iterm2", "iTerm.app"), ("wezterm", "WezTerm"), ("ghostty", "ghostty")):
        if kind.startswith(prefix):
            outer["TERM_PROGRAM"] = program
    if kind.startswith("kitty"):
        outer["TERM"] = "xterm-kitty"
    if kind.startswith("foot"):
        outer["TERM"] = "foot"
    return outer


# --------------------------------------------------------------------------- real probes


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
            while not _DA1_RE.search(reply):
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


# --------------------------------------------------------------------------- detection


def detect(
    flag: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    is_tty: bool | None = None,
    can_query: bool | None = None,
    query: QueryFn | None = None,
    tmux_probe: Callable[[], TmuxState] | None = None,
    winsize: Callable[[], WinSize | None] | None = None,
    timeout: float = QUERY_TIMEOUT,
) -> Terminal:
    """Resolve the preview mode: `flag` (--preview) > VCHAT_PREVIEW > environment hints > query.

    `is_tty`: stdout is a terminal (default: sys.stdout.isatty()). Without one, auto and
    VCHAT_PREVIEW give "none" (paths only) so a shell-wide setting never sends escapes into
    a pipe; only an explicit flag forces a mode. `can_query`: the terminal may be asked
    (default: stdin is a terminal too). Every probe is injectable for tests.
    """
    env = os.environ if env is None else env
    if is_tty is None:
        is_tty = _isatty(sys.stdout)
    if can_query is None:
        can_query = _isatty(sys.stdin)
    can_query = can_query and is_tty
    ask = tty_query if query is None else query
    size = (read_winsize if winsize is None else winsize)() if is_tty else None
    if size:
        cols, rows = size.cols, size.rows
    else:
        import shutil  # COLUMNS/LINES, then the terminal behind stdout, then 80x24

        cols, rows = shutil.get_terminal_size()
    cell: tuple[int, int] | None = None
    if size and size.xpixel > 0 and size.ypixel > 0:
        cell = (max(1, size.xpixel // size.cols), max(1, size.ypixel // size.rows))

    tmux = in_tmux(env) and is_tty
    state: TmuxState | None = None

    def tmux_state() -> TmuxState:
        nonlocal state
        if state is None:
            state = (probe_tmux if tmux_probe is None else tmux_probe)()
        return state

    reply: QueryReply | None = None
    forced = normalise_mode(flag, "--preview")
    from_env = normalise_mode(env.get("VCHAT_PREVIEW"), "VCHAT_PREVIEW")
    if forced:
        mode, reason = forced, "--preview"
    elif from_env and is_tty:
        mode, reason = from_env, "VCHAT_PREVIEW"
    elif not is_tty:
        mode, reason = "none", "not a terminal"
    elif tmux:
        mode, reason, reply = _auto_tmux(env, tmux_state(), can_query, ask, timeout)
    else:
        mode, reason, reply = _auto(env_hint(env), can_query, ask, timeout)

    wrap = False
    if tmux and mode in GRAPHICS:
        # tmux would swallow kitty/iTerm2 escapes; sixel it may draw itself (tmux ≥ 3.4 with
        # sixel built in), which a query answered by tmux told us and which needs no wrapping.
        native_sixel = mode == "sixel" and reply is not None and reply.sixel
        wrap = not native_sixel and tmux_state().passthrough
        if wrap:
            reason += ", tmux passthrough"

    if cell is None and reply is not None:
        cell = reply.cell_px
    if cell is None and mode in GRAPHICS and can_query and reply is None:
        # Pixel-exact protocols need the cell size; TIOCGWINSZ had none, so ask for it alone.
        cell = parse_reply(ask(CELL_QUERY + DA1_QUERY, timeout)).cell_px
    return Terminal(mode, max(1, cols), max(1, rows), cell or DEFAULT_CELL, wrap, reason)


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):
        return False


def _auto(hint: Hint, can_query: bool, ask: QueryFn, timeout: float) -> tuple[str, str, QueryReply | None]:
    if hint.mode is not None:
        return hint.mode, hint.reason, None
    if not can_query:
        return hint.fallback, f"{hint.reason}, not queried", None
    reply = parse_reply(ask(FULL_QUERY, timeout))
    if not reply.answered:
        return hint.fallback, f"{hint.reason}, no reply to query", reply
    if reply.kitty and not (reply.sixel and hint.prefer_sixel):
        return "kitty", f"{hint.reason}, query: kitty graphics", reply
    if reply.sixel:
        return hint.on_sixel, f"{hint.reason}, query: sixel", reply
    return "blocks", f"{hint.reason}, query: no graphics", reply


def _auto_tmux(
    env: Mapping[str, str], state: TmuxState, can_query: bool, ask: QueryFn, timeout: float
) -> tuple[str, str, QueryReply | None]:
    if state.passthrough:
        hint = env_hint(_outer_env(env, state))
        if hint.mode in GRAPHICS:
            return hint.mode or "blocks", f"tmux in {hint.reason}", None
    # Without passthrough only tmux itself answers: DA1 lists sixel when tmux can draw it.
    if not can_query:
        return "blocks", "tmux, not queried", None
    reply = parse_reply(ask(CELL_QUERY + DA1_QUERY, timeout))
    if reply.sixel:
        return "sixel", "tmux, query: sixel", reply
    return "blocks", "tmux" if reply.answered else "tmux, no reply to query", reply
