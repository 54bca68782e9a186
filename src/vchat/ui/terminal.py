"""Terminal capabilities: which inline image protocol to use, the size in cells and the cell size.

The records and query bytes are in term_records, what the environment says in term_hints, the real
probes (tmux, TIOCGWINSZ, the tty query) in term_probe; this module decides, and re-exports them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

from vchat.ui.term_hints import draws_placeholders, env_hint, in_tmux, outer_env, over_ssh
from vchat.ui.term_probe import probe_tmux, read_winsize, tty_query
from vchat.ui.term_records import (
    CELL_QUERY,
    DA1_QUERY,
    DEFAULT_CELL,
    FULL_QUERY,
    GRAPHICS,
    KITTY_QUERY,
    MODES,
    QUERY_TIMEOUT,
    TMUX_HINT,
    TMUX_TIMEOUT,
    Hint,
    QueryFn,
    QueryReply,
    Terminal,
    TmuxState,
    WinSize,
    normalise_mode,
    parse_reply,
    query_timeout,
)

__all__ = [
    "CELL_QUERY",
    "DA1_QUERY",
    "DEFAULT_CELL",
    "FULL_QUERY",
    "GRAPHICS",
    "KITTY_QUERY",
    "MODES",
    "QUERY_TIMEOUT",
    "TMUX_HINT",
    "TMUX_TIMEOUT",
    "Hint",
    "QueryReply",
    "Terminal",
    "TmuxState",
    "WinSize",
    "detect",
    "env_hint",
    "in_tmux",
    "normalise_mode",
    "parse_reply",
    "probe_tmux",
    "read_winsize",
    "tty_query",
]


def detect(
    flag: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    is_tty: bool | None = None,
    can_query: bool | None = None,
    query: QueryFn | None = None,
    tmux_probe: Callable[[], TmuxState] | None = None,
    winsize: Callable[[], WinSize | None] | None = None,
    timeout: float | None = None,
) -> Terminal:
    """Resolve the preview mode: `flag` (--preview) > VCHAT_PREVIEW > environment hints > query.

    `is_tty`: stdout is a terminal (default: sys.stdout.isatty()). Without one, auto and
    VCHAT_PREVIEW give "none" (paths only) so a shell-wide setting never sends escapes into
    a pipe; only an explicit flag forces a mode. `can_query`: the terminal may be asked
    (default: stdin is a terminal too). `timeout`: seconds to wait for the terminal's answer
    (default: VCHAT_PREVIEW_TIMEOUT, else QUERY_TIMEOUT). Every probe is injectable for tests.
    """
    env = os.environ if env is None else env
    timeout = query_timeout(env) if timeout is None else timeout
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

    wrap = placeholders = False
    hint = ""
    if tmux and mode in GRAPHICS:
        # tmux would swallow kitty/iTerm2 escapes; sixel it may draw itself (tmux ≥ 3.4 with
        # sixel built in), which a query answered by tmux told us and which needs no wrapping.
        native_sixel = mode == "sixel" and reply is not None and reply.sixel
        wrap = not native_sixel and tmux_state().passthrough
        if wrap:
            reason += ", tmux passthrough"
            placeholders = mode == "kitty" and draws_placeholders(env, tmux_state())
            if placeholders:
                reason += ", Unicode placeholders"
    auto = not forced and not (from_env and is_tty) and is_tty
    if auto and tmux and mode == "blocks" and not tmux_state().passthrough:
        hint = TMUX_HINT
    elif auto and mode == "blocks" and reply is not None and not reply.answered:
        hint = (
            f"the terminal did not answer the graphics query in {timeout:g} s, so previews are half-blocks: "
            f"on a slow link set VCHAT_PREVIEW_TIMEOUT=3, or choose with --preview kitty|iterm|sixel"
        )
    if is_tty and over_ssh(env):
        reason += ", over ssh"

    if cell is None and reply is not None:
        cell = reply.cell_px
    if cell is None and mode in GRAPHICS and can_query and reply is None:
        # Pixel-exact protocols need the cell size; TIOCGWINSZ had none, so ask for it alone.
        cell = parse_reply(ask(CELL_QUERY + DA1_QUERY, timeout)).cell_px
    return Terminal(mode, max(1, cols), max(1, rows), cell or DEFAULT_CELL, wrap, reason, hint, placeholders)


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
        hint = env_hint(outer_env(env, state))
        if hint.mode in GRAPHICS:
            return hint.mode or "blocks", f"tmux in {hint.reason}", None
    # Without passthrough only tmux itself answers: DA1 lists sixel when tmux can draw it.
    if not can_query:
        return "blocks", "tmux, not queried", None
    reply = parse_reply(ask(CELL_QUERY + DA1_QUERY, timeout))
    if reply.sixel:
        return "sixel", "tmux, query: sixel", reply
    return "blocks", "tmux" if reply.answered else "tmux, no reply to query", reply
