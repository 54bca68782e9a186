"""Previews in tmux and over ssh: the passthrough hint, kitty's Unicode placeholders, the query timeout, fallbacks."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from vchat.cli.show import show
from vchat.errors import ConfigError
from vchat.ui import terminal as T
from vchat.ui.kitty_unicode import DIACRITICS, MAX_CELLS, PLACEHOLDER, placeholder_text, transmit_chunks
from vchat.ui.preview import render_preview, scale_to_cells

SIZE = T.WinSize(100, 40, 1000, 800)  # 10×20 pixel cells


def _detect(env: dict[str, str], state: T.TmuxState | None = None, reply: bytes = b"", **kw: object) -> T.Terminal:
    asked: list[float] = []

    def query(data: bytes, timeout: float) -> bytes:
        asked.append(timeout)
        return reply

    term = T.detect(
        None,
        env=env,
        is_tty=True,
        can_query=True,
        query=query,
        tmux_probe=lambda: state or T.TmuxState(passthrough=False),
        winsize=lambda: SIZE,
        **kw,  # type: ignore[arg-type]
    )
    _detect.asked = asked  # type: ignore[attr-defined]
    return term


DA1_ONLY = b"\x1b[?62;22c"  # tmux itself answers: no sixel


def test_tmux_without_passthrough_falls_back_to_blocks_and_says_how_to_fix_it() -> None:
    term = _detect({"TERM": "tmux-256color", "TMUX": "/tmp/x,1,0"}, T.TmuxState(False, "xterm-kitty"), DA1_ONLY)
    assert term.mode == "blocks" and not term.tmux
    assert term.hint == T.TMUX_HINT and "set -g allow-passthrough on" in term.hint


def test_tmux_with_passthrough_in_kitty_uses_unicode_placeholders() -> None:
    state = T.TmuxState(True, "xterm-kitty", "kitty(0.35.2)")
    term = _detect({"TERM": "tmux-256color", "TMUX": "/tmp/x,1,0"}, state)
    assert (term.mode, term.tmux, term.placeholders, term.hint) == ("kitty", True, True, "")
    ghostty = T.TmuxState(True, "xterm-ghostty", "ghostty 1.1.0")
    assert _detect({"TERM": "tmux-256color", "TMUX": "x"}, ghostty).placeholders


def test_tmux_with_passthrough_in_wezterm_wraps_iterm_without_placeholders() -> None:
    state = T.TmuxState(True, "xterm-256color", "WezTerm 20240203")
    term = _detect({"TERM": "tmux-256color", "TMUX": "x"}, state)
    assert (term.mode, term.tmux, term.placeholders) == ("iterm", True, False)


def test_explicit_blocks_in_tmux_gives_no_hint() -> None:
    term = T.detect("blocks", env={"TERM": "tmux-256color", "TMUX": "x"}, is_tty=True, winsize=lambda: SIZE)
    assert term.mode == "blocks" and term.hint == ""


def test_a_silent_terminal_falls_back_visibly_and_names_the_timeout() -> None:
    term = _detect({"TERM": "xterm-256color", "VCHAT_PREVIEW_TIMEOUT": "2.5"})
    assert _detect.asked == [2.5]  # type: ignore[attr-defined]
    assert term.mode == "blocks" and "2.5 s" in term.hint and "VCHAT_PREVIEW_TIMEOUT" in term.hint


def test_the_default_timeout_tolerates_ssh() -> None:
    term = _detect({"TERM": "xterm-256color", "SSH_CONNECTION": "10.0.0.1 5 10.0.0.2 22"}, reply=DA1_ONLY)
    assert _detect.asked == [T.QUERY_TIMEOUT] and T.QUERY_TIMEOUT >= 0.5  # type: ignore[attr-defined]
    assert term.reason.endswith("over ssh") and term.mode == "blocks" and term.hint == ""


@pytest.mark.parametrize("value", ["0", "-1", "soon", "60"])
def test_a_bad_timeout_is_one_line(value: str) -> None:
    with pytest.raises(ConfigError, match="VCHAT_PREVIEW_TIMEOUT"):
        _detect({"TERM": "xterm", "VCHAT_PREVIEW_TIMEOUT": value})


def test_placeholders_name_the_image_row_and_column() -> None:
    text = placeholder_text((3, 2), 0x12AB34).decode()
    lines = text.splitlines()
    assert len(lines) == 2
    for row, line in enumerate(lines):
        assert line.startswith("\x1b[38;2;18;171;52m") and line.endswith("\x1b[39m")
        body = line[len("\x1b[38;2;18;171;52m") : -len("\x1b[39m")]
        cells = [body[i : i + 3] for i in range(0, len(body), 3)]
        assert cells == [PLACEHOLDER + DIACRITICS[row] + DIACRITICS[col] for col in range(3)]
    assert len(DIACRITICS) == MAX_CELLS == 297 and len(set(DIACRITICS)) == 297


def test_placeholder_preview_sends_a_virtual_placement_through_tmux() -> None:
    image = Image.new("RGB", (300, 200), (200, 30, 30))
    data = render_preview(image, "kitty", cols=40, rows=10, tmux=True, placeholders=True)
    end = data.rindex(b"\x1b\\") + 2  # the last passthrough ends there; nothing but text follows
    head, rest = data[:end], data[end:].decode()
    assert head.startswith(b"\x1bPtmux;\x1b\x1b_Ga=T,U=1,f=100,q=2,i=")
    assert b",c=30,r=10," in head  # 300×200 px in 10×20 px cells
    assert rest.count(PLACEHOLDER) == 30 * 10 and rest.count("\n") == 10  # every cell, as text tmux keeps
    assert b"\x1b7" not in data  # nothing drawn at a saved cursor: tmux keeps the text itself
    with pytest.raises(ValueError, match="cells"):
        transmit_chunks(b"", (MAX_CELLS + 1, 1), 0x10000)


def test_sixel_does_not_grow_a_photo_by_a_little() -> None:
    photo = Image.new("RGB", (600, 400), (10, 120, 200))
    assert scale_to_cells(photo, 80, 22, (10, 20)).size == (600, 400)  # was 660×440
    icon = Image.new("RGB", (64, 64))
    assert scale_to_cells(icon, 80, 22, (10, 20)).size == (128, 128)  # small pictures still grow


def test_show_says_the_hint_once_on_stderr(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    paths = []
    for i in range(2):
        Image.new("RGB", (40, 30), (i * 100, 0, 0)).save(folder / f"p{i}.png")
        paths.append(folder / f"p{i}.png")
    term = T.Terminal("blocks", 80, 24, (10, 20), False, "tmux", T.TMUX_HINT)
    out, err = io.BytesIO(), io.StringIO()
    assert show(paths, None, out, err=err, terminal=term) == 0
    assert err.getvalue().count("allow-passthrough on") == 1
    assert out.getvalue().count("▀".encode()) > 0 and str(paths[1]).encode() in out.getvalue()


def test_a_picture_wider_than_the_placeholders_can_name_is_drawn_directly() -> None:
    from vchat.ui.preview import PLACEHOLDER_CELLS

    assert PLACEHOLDER_CELLS == MAX_CELLS
    wide = Image.new("RGB", (4000, 100), (0, 90, 0))
    data = render_preview(wide, "kitty", cols=400, rows=10, tmux=True, placeholders=True)
    assert b"U=1" not in data and PLACEHOLDER.encode() not in data and b"\x1bPtmux;" in data


def test_sixel_through_tmux_stays_under_its_sequence_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from vchat.ui import preview

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 600, 3), dtype=np.uint8))
    whole = render_preview(noise, "sixel", cols=60, rows=20, cell_px=(10, 20), tmux=True)
    monkeypatch.setattr(preview, "TMUX_SEQUENCE_MAX", len(whole) // 3)  # as if the picture were three times bigger
    limited = render_preview(noise, "sixel", cols=60, rows=20, cell_px=(10, 20), tmux=True)
    passthrough = limited[limited.index(b"\x1bPtmux;") :]
    assert len(passthrough) <= len(whole) // 3
    assert b"\x1bPtmux;" in limited and limited.count(b"\x1bPtmux;") == 1
