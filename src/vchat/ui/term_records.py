"""What terminal detection works with: the query bytes, the replies, and the records it builds."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

from vchat.errors import ConfigError

MODES: Final = ("kitty", "iterm", "sixel", "blocks", "none")
GRAPHICS: Final = ("kitty", "iterm", "sixel")
DEFAULT_CELL: Final = (10, 20)
# Generous: the reply may cross an ssh link, and we only wait when a terminal is silent,
# since every terminal answers DA1 (the sentinel) as soon as it has read the batch.
QUERY_TIMEOUT: Final = 1.0
TIMEOUT_VAR: Final = "VCHAT_PREVIEW_TIMEOUT"  # seconds to wait for the terminal's answer (a slow ssh link)
TMUX_HINT: Final = (
    "tmux is not passing images through, so previews are half-blocks: "
    "`tmux set -g allow-passthrough on` (and the same line in ~/.tmux.conf) shows them in full"
)
TMUX_TIMEOUT: Final = 0.5

# The kitty query draws nothing: a 1×1 RGB image sent with a=q is checked, answered and dropped.
KITTY_QUERY: Final = b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
CELL_QUERY: Final = b"\x1b[16t"  # cell size in pixels: CSI 6 ; height ; width t
DA1_QUERY: Final = b"\x1b[c"  # primary device attributes: CSI ? 6x ; … c; 4 means sixel
FULL_QUERY: Final = KITTY_QUERY + CELL_QUERY + DA1_QUERY

DA1_RE = re.compile(rb"\x1b\[\?([0-9;]*)c")
_KITTY_RE = re.compile(rb"\x1b_Gi=31;([^\x1b]*)\x1b\\")
_CELL_RE = re.compile(rb"\x1b\[6;(\d+);(\d+)t")

QueryFn = Callable[[bytes, float], bytes]

# Variables a terminal sets to say which it is (TERM and TERM_PROGRAM aside).
IDENTITY_VARS: Final = (
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
    hint: str = ""  # said once to the user when previews are worse than they could be, and how to fix it
    placeholders: bool = False  # kitty through tmux as Unicode placeholders (preview.render_preview(placeholders=…))

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
    da1 = DA1_RE.search(data)
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


def query_timeout(env: Mapping[str, str]) -> float:
    """Seconds to wait for the terminal's answer: VCHAT_PREVIEW_TIMEOUT, else QUERY_TIMEOUT."""
    text = env.get(TIMEOUT_VAR, "").strip()
    if not text:
        return QUERY_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 30:
        raise ConfigError(f"{TIMEOUT_VAR} must be seconds between 0 and 30 (e.g. 2 over a slow ssh link), not {text!r}")
    return value
