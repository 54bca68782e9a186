"""`vchat show`: images inline (or paths only), errors per file, a light import."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vchat.cli.show import show
from vchat.ui.terminal import Terminal

ENV = {"TERM": "xterm-256color"}


@pytest.fixture(autouse=True)
def _size(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a terminal the box comes from COLUMNS/LINES (as shutil reads them).
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("LINES", "12")


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    a = tmp_path / "a.png"
    Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8), "RGB").save(a)
    b = tmp_path / "b c.png"
    Image.new("RGB", (64, 32), (200, 10, 10)).save(b)
    return [a, b]


def run_show(paths: list[Path], preview: str | None) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = show(paths, preview, out, err=err, env=ENV)
    return code, out.getvalue(), err.getvalue()


def test_auto_without_terminal_prints_paths_only(pictures: list[Path]) -> None:
    code, out, err = run_show(pictures, None)
    assert code == 0 and err == ""
    assert out == f"{pictures[0]}\n{pictures[1]}\n".encode()


def test_none_prints_paths_only(pictures: list[Path]) -> None:
    assert run_show(pictures, "none")[1] == f"{pictures[0]}\n{pictures[1]}\n".encode()


def test_blocks_forced_into_a_pipe(pictures: list[Path]) -> None:
    code, out, _ = run_show(pictures[1:], "blocks")
    lines = out.decode().splitlines()
    assert code == 0 and lines[-1] == str(pictures[1])
    # 64x32 px doubled (upscale limit) in 10x20 cells: 13 columns, 3 text rows.
    assert len(lines) == 4
    assert lines[0].startswith("\x1b[38;2;200;10;10m\x1b[48;2;200;10;10m▀") and lines[0].count("▀") == 13


@pytest.mark.parametrize(
    ("mode", "start"),
    [("sixel", b'\x1bPq"1;1;'), ("kitty", b"\x1b_Ga=T,f=100,q=2,"), ("iterm", b"\x1b]1337;File=inline=1;")],
)
def test_graphics_forced_into_a_pipe(pictures: list[Path], mode: str, start: bytes) -> None:
    code, out, _ = run_show(pictures, mode)
    assert code == 0
    assert out.startswith(start) and out.count(start) == 2
    assert out.endswith(f"\n{pictures[1]}\n".encode())
    assert f"\n{pictures[0]}\n".encode() in out
    assert b"tmux" not in out


def test_unreadable_files_report_and_continue(pictures: list[Path], tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    code, out, err = run_show([missing, pictures[0], broken], "blocks")
    assert code == 1
    assert err.count("\n") == 2 and err.startswith("vchat show: ")
    assert "missing.png: no such file" in err and "broken.png" in err
    assert out.decode().splitlines()[-1] == str(pictures[0])
    assert "▀" in out.decode()


def test_transparent_image(tmp_path: Path) -> None:
    path = tmp_path / "t.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(path)
    code, out, _ = run_show([path], "blocks")
    assert code == 0 and out.startswith(b"\x1b[38;2;128;128;128m\x1b[48;2;128;128;128m")


def test_given_terminal_skips_detection(pictures: list[Path]) -> None:
    term = Terminal("blocks", cols=4, rows=4, cell_px=(10, 20), tmux=False, reason="test")
    out = io.BytesIO()
    assert show(pictures[:1], None, out, terminal=term) == 0
    lines = out.getvalue().decode().splitlines()
    assert lines[-1] == str(pictures[0]) and all(line.count("▀") <= 4 for line in lines[:-1])


def test_bad_mode_is_a_config_error(pictures: list[Path]) -> None:
    from vchat.errors import ConfigError

    with pytest.raises(ConfigError):
        run_show(pictures, "png")


def test_import_is_light() -> None:
    code = "import sys, vchat.cli.show; bad = {'torch', 'diffusers', 'transformers'} & set(sys.modules); print(bad)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "set()"
