"""Preview capability detection: every branch with an injected environment and fake replies."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from vchat.errors import ConfigError
from vchat.ui import terminal as T

DA1_PLAIN = b"\x1b[?62;22c"  # VT220-ish, no sixel
DA1_SIXEL = b"\x1b[?62;4;22c"
KITTY_OK = b"\x1b_Gi=31;OK\x1b\\"
KITTY_ERR = b"\x1b_Gi=31;ENOTSUPPORTED:graphics\x1b\\"
CELL_9X18 = b"\x1b[6;18;9t"


class FakeTerm:
    """A query function that records what it was asked and answers with canned bytes."""

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.calls: list[tuple[bytes, float]] = []

    def __call__(self, data: bytes, timeout: float) -> bytes:
        self.calls.append((data, timeout))
        return self.reply


def fixed_size(cols: int = 100, rows: int = 40, xpixel: int = 1000, ypixel: int = 800) -> Callable[[], T.WinSize]:
    return lambda: T.WinSize(cols, rows, xpixel, ypixel)


def run_detect(
    env: Mapping[str, str],
    reply: bytes = b"",
    *,
    flag: str | None = None,
    is_tty: bool = True,
    can_query: bool = True,
    tmux: T.TmuxState | None = None,
    size: Callable[[], T.WinSize | None] | None = None,
) -> tuple[T.Terminal, FakeTerm, list[int]]:
    fake = FakeTerm(reply)
    probes: list[int] = []

    def probe() -> T.TmuxState:
        probes.append(1)
        assert tmux is not None, "tmux probed outside tmux"
        return tmux

    term = T.detect(
        flag,
        env=env,
        is_tty=is_tty,
        can_query=can_query,
        query=fake,
        tmux_probe=probe,
        winsize=size or fixed_size(),
    )
    return term, fake, probes


# --------------------------------------------------------------------------- overrides, no TTY


def test_not_a_tty_prints_paths_only_and_never_asks() -> None:
    term, fake, probes = run_detect({"TERM": "xterm-kitty", "TMUX": "x"}, KITTY_OK + DA1_SIXEL, is_tty=False)
    assert term.mode == "none" and term.reason == "not a terminal"
    assert fake.calls == [] and probes == [] and not term.tmux


def test_flag_forces_mode_even_without_tty() -> None:
    term, fake, _ = run_detect({"TERM": "dumb"}, flag="sixel", is_tty=False)
    assert term.mode == "sixel" and term.reason == "--preview" and fake.calls == []


def test_flag_beats_env_beats_auto() -> None:
    env = {"TERM": "xterm-kitty", "VCHAT_PREVIEW": "blocks"}
    assert run_detect(env, flag="iterm")[0].mode == "iterm"
    term = run_detect(env)[0]
    assert (term.mode, term.reason) == ("blocks", "VCHAT_PREVIEW")
    assert run_detect({**env, "VCHAT_PREVIEW": "auto"})[0].mode == "kitty"
    assert run_detect(env, flag="auto")[0].mode == "blocks"
    assert run_detect(env, flag="ITERM2")[0].mode == "iterm"


def test_env_override_is_ignored_without_tty() -> None:
    term, _, _ = run_detect({"VCHAT_PREVIEW": "kitty"}, is_tty=False)
    assert term.mode == "none"


@pytest.mark.parametrize(("flag", "env"), [("png", {}), (None, {"VCHAT_PREVIEW": "ascii"})])
def test_bad_override_is_a_config_error(flag: str | None, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="preview must be one of"):
        run_detect(env, flag=flag)


# --------------------------------------------------------------------------- environment hints


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({"TERM": "xterm-kitty"}, "kitty"),
        ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "3"}, "kitty"),
        ({"TERM": "xterm-ghostty", "TERM_PROGRAM": "ghostty"}, "kitty"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "ghostty"}, "kitty"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, "iterm"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app"}, "iterm"),
        ({"TERM": "xterm-256color", "LC_TERMINAL": "iTerm2"}, "iterm"),  # over ssh
        ({"TERM": "foot"}, "sixel"),
        ({"TERM": "foot-extra"}, "sixel"),
        ({"TERM": "xterm", "MLTERM": "3.9.3"}, "sixel"),
        ({"TERM": "mlterm"}, "sixel"),
        ({"TERM": "dumb"}, "none"),
        ({"TERM": "linux"}, "blocks"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "Apple_Terminal"}, "blocks"),
    ],
)
def test_conclusive_env_hints_skip_the_query(env: dict[str, str], mode: str) -> None:
    term, fake, probes = run_detect(env, KITTY_OK + DA1_SIXEL)
    assert term.mode == mode
    assert fake.calls == [] and probes == []
    assert term.cell_px == (10, 20) and (term.cols, term.rows) == (100, 40)


@pytest.mark.parametrize(
    ("reply", "mode"),
    [(DA1_SIXEL, "iterm"), (DA1_PLAIN, "blocks"), (b"", "blocks")],
)
def test_vscode_images_depend_on_the_image_addon(reply: bytes, mode: str) -> None:
    term, fake, _ = run_detect({"TERM": "xterm-256color", "TERM_PROGRAM": "vscode"}, reply)
    assert term.mode == mode and len(fake.calls) == 1


@pytest.mark.parametrize(
    ("version", "reply", "mode"),
    [
        ("230804", KITTY_OK + DA1_SIXEL, "sixel"),  # both: sixel is the complete one
        ("230804", KITTY_OK + DA1_PLAIN, "kitty"),
        ("230804", DA1_PLAIN, "blocks"),
        ("230804", b"", "sixel"),  # no reply: trust the version
        ("211200", b"", "blocks"),
    ],
)
def test_konsole(version: str, reply: bytes, mode: str) -> None:
    term, _, _ = run_detect({"TERM": "xterm-256color", "KONSOLE_VERSION": version}, reply)
    assert term.mode == mode


def test_konsole_without_query_uses_version() -> None:
    term, fake, _ = run_detect({"KONSOLE_VERSION": "240202"}, can_query=False)
    assert term.mode == "sixel" and fake.calls == [] and "not queried" in term.reason


@pytest.mark.parametrize(("reply", "mode"), [(DA1_SIXEL, "sixel"), (DA1_PLAIN, "blocks")])
def test_windows_terminal_asks_for_sixel(reply: bytes, mode: str) -> None:
    term, _, _ = run_detect({"WT_SESSION": "6f2c…", "TERM": "xterm-256color"}, reply)
    assert term.mode == mode


@pytest.mark.parametrize(
    ("reply", "mode", "reason"),
    [
        (KITTY_OK + CELL_9X18 + DA1_PLAIN, "kitty", "kitty graphics"),
        (KITTY_ERR + DA1_SIXEL, "sixel", "query: sixel"),
        (DA1_SIXEL, "sixel", "query: sixel"),
        (DA1_PLAIN, "blocks", "no graphics"),
        (b"", "blocks", "no reply"),
        (KITTY_OK, "blocks", "no reply"),  # without the sentinel nothing is trusted
    ],
)
def test_generic_terminal_is_queried_once(reply: bytes, mode: str, reason: str) -> None:
    term, fake, _ = run_detect({"TERM": "xterm-256color", "XTERM_VERSION": "XTerm(390)"}, reply)
    assert term.mode == mode and reason in term.reason
    assert fake.calls == [(T.FULL_QUERY, T.QUERY_TIMEOUT)]


def test_query_is_batched_with_da1_last_as_sentinel() -> None:
    assert T.FULL_QUERY.startswith(T.KITTY_QUERY)
    assert T.FULL_QUERY.endswith(T.DA1_QUERY)
    assert T.KITTY_QUERY == b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
    assert T.QUERY_TIMEOUT >= 0.5


def test_no_query_without_stdin_tty() -> None:
    term, fake, _ = run_detect({"TERM": "xterm-256color"}, DA1_SIXEL, can_query=False)
    assert term.mode == "blocks" and fake.calls == []


# --------------------------------------------------------------------------- cell size


def test_cell_size_from_winsize_pixels() -> None:
    term, _, _ = run_detect({"TERM": "xterm-kitty"}, size=fixed_size(80, 24, 1440, 864))
    assert term.cell_px == (18, 36) and (term.cols, term.rows) == (80, 24)


def test_cell_size_from_query_when_winsize_has_no_pixels() -> None:
    term, fake, _ = run_detect({"TERM": "xterm"}, DA1_SIXEL + CELL_9X18, size=fixed_size(80, 24, 0, 0))
    assert term.cell_px == (9, 18) and len(fake.calls) == 1


def test_cell_size_only_query_when_env_decided_mode() -> None:
    term, fake, _ = run_detect({"TERM": "foot"}, CELL_9X18 + DA1_SIXEL, size=fixed_size(80, 24, 0, 0))
    assert term.mode == "sixel" and term.cell_px == (9, 18)
    assert fake.calls == [(T.CELL_QUERY + T.DA1_QUERY, T.QUERY_TIMEOUT)]


def test_cell_size_defaults() -> None:
    term, fake, _ = run_detect({"TERM": "foot"}, b"", size=fixed_size(80, 24, 0, 0))
    assert term.cell_px == T.DEFAULT_CELL
    term, fake, _ = run_detect({"TERM": "linux"}, CELL_9X18, size=fixed_size(80, 24, 0, 0))
    assert term.cell_px == T.DEFAULT_CELL and fake.calls == []  # blocks need no pixel size


def test_size_falls_back_when_winsize_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "77")
    monkeypatch.setenv("LINES", "21")
    term, _, _ = run_detect({"TERM": "linux"}, size=lambda: None)
    assert (term.cols, term.rows) == (77, 21)
    assert term.box() == (77, 19) and term.box(max_rows=5) == (77, 5)


# --------------------------------------------------------------------------- tmux


@pytest.mark.parametrize(
    ("state", "mode"),
    [
        (T.TmuxState(True, "xterm-kitty", "kitty(0.35.2)"), "kitty"),
        (T.TmuxState(True, "xterm-256color", "kitty(0.35.2)"), "kitty"),
        (T.TmuxState(True, "xterm-256color", "iTerm2 3.5.0"), "iterm"),
        (T.TmuxState(True, "xterm-256color", "WezTerm 20240203"), "iterm"),
        (T.TmuxState(True, "xterm-ghostty", ""), "kitty"),
        (T.TmuxState(True, "foot", ""), "sixel"),
    ],
)
def test_tmux_with_passthrough_uses_outer_terminal(state: T.TmuxState, mode: str) -> None:
    env = {"TMUX": "/tmp/tmux-0/default,1,0", "TERM": "tmux-256color", "TERM_PROGRAM": "tmux"}
    term, fake, probes = run_detect(env, DA1_SIXEL, tmux=state)
    assert term.mode == mode and term.tmux and "passthrough" in term.reason
    assert fake.calls == [] and probes == [1]


def test_tmux_outer_hint_from_inherited_env() -> None:
    env = {"TMUX": "x", "TERM": "screen-256color", "LC_TERMINAL": "iTerm2"}
    term, _, _ = run_detect(env, tmux=T.TmuxState(True))
    assert term.mode == "iterm" and term.tmux


def test_tmux_client_name_beats_stale_inherited_env() -> None:
    env = {"TMUX": "x", "TERM": "tmux-256color", "KITTY_WINDOW_ID": "4"}  # server started in kitty
    term, _, _ = run_detect(env, tmux=T.TmuxState(True, "foot", "foot(1.16.2)"))
    assert term.mode == "sixel" and term.tmux


@pytest.mark.parametrize(("reply", "mode"), [(DA1_SIXEL, "sixel"), (DA1_PLAIN, "blocks"), (b"", "blocks")])
def test_tmux_without_passthrough_asks_tmux_itself(reply: bytes, mode: str) -> None:
    env = {"TMUX": "x", "TERM": "tmux-256color", "KITTY_WINDOW_ID": "1"}
    term, fake, _ = run_detect(env, reply, tmux=T.TmuxState(False, "xterm-kitty", "kitty(0.35)"))
    assert term.mode == mode and not term.tmux  # tmux draws sixel itself: nothing to wrap
    assert fake.calls == [(T.CELL_QUERY + T.DA1_QUERY, T.QUERY_TIMEOUT)]


def test_tmux_passthrough_but_unknown_outer_terminal() -> None:
    env = {"TMUX": "x", "TERM": "tmux-256color"}
    term, _, _ = run_detect(env, DA1_SIXEL, tmux=T.TmuxState(True, "xterm-256color", "XTerm(390)"))
    assert term.mode == "sixel" and not term.tmux


def test_tmux_without_query_falls_back_to_blocks() -> None:
    term, fake, _ = run_detect({"TERM": "screen"}, DA1_SIXEL, can_query=False, tmux=T.TmuxState(False))
    assert term.mode == "blocks" and fake.calls == []


@pytest.mark.parametrize(("passthrough", "wrapped"), [(True, True), (False, False)])
def test_tmux_forced_mode_wraps_only_when_allowed(passthrough: bool, wrapped: bool) -> None:
    term, _, _ = run_detect({"TMUX": "x"}, flag="kitty", tmux=T.TmuxState(passthrough))
    assert term.mode == "kitty" and term.tmux is wrapped


def test_tmux_blocks_needs_no_probe() -> None:
    term, _, probes = run_detect({"TMUX": "x"}, flag="blocks", tmux=T.TmuxState(True))
    assert not term.tmux and probes == []


def test_in_tmux() -> None:
    assert T.in_tmux({"TMUX": "/tmp/x,1,0"})
    assert T.in_tmux({"TERM": "tmux-256color"}) and T.in_tmux({"TERM": "screen.xterm-256color"})
    assert not T.in_tmux({"TERM": "xterm"})


# --------------------------------------------------------------------------- tmux probe


def fake_run(answers: dict[str, Any]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert args[0] == "tmux" and kwargs["timeout"] <= 1.0
        answer = answers[args[1]]
        if isinstance(answer, BaseException):
            raise answer
        return subprocess.CompletedProcess(args, 0, stdout=answer, stderr="")

    return run


@pytest.mark.parametrize(("value", "allowed"), [("on\n", True), ("all\n", True), ("off\n", False), ("", False)])
def test_probe_tmux_passthrough(value: str, allowed: bool) -> None:
    state = T.probe_tmux(fake_run({"show": value, "display-message": "xterm-kitty\tkitty(0.35.2)\n"}))
    assert state == T.TmuxState(allowed, "xterm-kitty", "kitty(0.35.2)")


@pytest.mark.parametrize("error", [subprocess.TimeoutExpired("tmux", 0.5), FileNotFoundError("tmux")])
def test_probe_tmux_failures_mean_no_passthrough(error: BaseException) -> None:
    assert T.probe_tmux(fake_run({"show": error, "display-message": error})) == T.TmuxState(False)


def test_probe_tmux_nonzero_exit() -> None:
    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 1, stdout="on", stderr="no server running")

    assert T.probe_tmux(run) == T.TmuxState(False)


# --------------------------------------------------------------------------- reply parsing


def test_parse_reply_any_order_with_noise() -> None:
    reply = T.parse_reply(b"typed" + CELL_9X18 + DA1_SIXEL + KITTY_OK)
    assert reply == T.QueryReply(answered=True, kitty=True, sixel=True, cell_px=(9, 18))


def test_parse_reply_rejects_lookalikes() -> None:
    reply = T.parse_reply(KITTY_ERR + b"\x1b[?64;14;22c" + b"\x1b[6;0;0t")
    assert reply == T.QueryReply(answered=True, kitty=False, sixel=False, cell_px=None)
    assert not T.parse_reply(b"").answered


# --------------------------------------------------------------------------- the real tty query, on a pty


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    return master, slave, os.ttyname(slave)


def test_tty_query_reads_until_da1() -> None:
    master, slave, path = _pty()
    seen = bytearray()

    def terminal() -> None:
        while not seen.endswith(T.DA1_QUERY):
            seen.extend(os.read(master, 1024))
        os.write(master, KITTY_OK + CELL_9X18)
        time.sleep(0.05)
        os.write(master, DA1_SIXEL)

    thread = threading.Thread(target=terminal, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        reply = T.tty_query(T.FULL_QUERY, 5.0, path=path)
        assert time.monotonic() - start < 2.0  # returned at the sentinel, not the timeout
        thread.join(2)
        assert bytes(seen) == T.FULL_QUERY
        assert reply == KITTY_OK + CELL_9X18 + DA1_SIXEL
        # The terminal's mode is restored (echo back on).
        assert termios.tcgetattr(slave)[3] & termios.ECHO
    finally:
        os.close(master)
        os.close(slave)


def test_tty_query_times_out_on_a_silent_terminal() -> None:
    master, slave, path = _pty()
    try:
        start = time.monotonic()
        assert T.tty_query(T.FULL_QUERY, 0.2, path=path) == b""
        assert 0.15 <= time.monotonic() - start < 2.0
    finally:
        os.close(master)
        os.close(slave)


def test_tty_query_without_terminal() -> None:
    assert T.tty_query(T.FULL_QUERY, 0.1, path="/nonexistent/tty") == b""


def test_read_winsize_on_a_pty() -> None:
    master, slave, _ = _pty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 1200, 600))
        assert T.read_winsize(slave) == T.WinSize(120, 30, 1200, 600)
    finally:
        os.close(master)
        os.close(slave)
    r, w = os.pipe()
    try:
        assert T.read_winsize(r) is None
    finally:
        os.close(r)
        os.close(w)
