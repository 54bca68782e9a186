"""`vchat tools` lists what the model and MCP clients are offered, unpadded in a pipe, wrapped at a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vchat.chat.prompts import system_prompt
from vchat.tools.base import offered
from vchat.tools.registry import OFFERED, all_tools
from vchat.ui.tool_list import NO_WRAP, tool_lines


def vchat_tools(tmp_path: Path, *args: str, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES") and not k.startswith("VCHAT_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), **({"COLUMNS": columns} if columns else {}))
    cmd = [sys.executable, "-m", "vchat", "tools", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)


def _named(lines: list[str]) -> list[str]:
    return [line.split()[0] for line in lines if line and not line.startswith(" ")]


def test_pipe_lists_the_offered_tools_unpadded(tmp_path: Path) -> None:
    out = vchat_tools(tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    names = _named(lines)
    assert names == sorted(t.name for t in OFFERED)
    assert {"detect_map", "generate_from_map", "transform"} <= set(names)
    assert "canny_edges" not in names and "flip_image" not in names
    assert "(canny_edges)" in out.stdout and "(flip_image)" in out.stdout  # old names still shown as covered
    assert not [line for line in lines if line != line.rstrip()], "no line is padded"
    # One line per description in a pipe: the longest line is a description, not padding to a fixed width.
    longest = max(lines, key=len)
    assert longest.rstrip() == longest and "  " not in longest.split("  ", 1)[1].strip()


def test_the_listing_is_what_the_model_and_mcp_see() -> None:
    classes = [type(t) for t in all_tools()]
    shown = set(_named(tool_lines(OFFERED)))
    assert shown == {t.name for t in offered(classes)}
    prompt = system_prompt(offered(classes))
    for name in shown:
        assert name in prompt


def test_terminal_width_wraps_under_the_description(tmp_path: Path) -> None:
    out = vchat_tools(tmp_path, "-v", columns="80")
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "• " in out.stdout  # -v shows the inputs
    assert _named(lines) == sorted(t.name for t in OFFERED)


def test_no_wrap_keeps_one_line_per_description() -> None:
    lines = tool_lines(OFFERED, width=NO_WRAP)
    assert len(_named(lines)) == len(OFFERED)
    families = [t for t in OFFERED if getattr(t, "members", None)]
    assert len(lines) == len(OFFERED) + len(families)


def test_one_tool_by_an_old_name_shows_its_inputs(tmp_path: Path) -> None:
    out = vchat_tools(tmp_path, "flip_image")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("flip_image") and "• direction" in out.stdout
    bad = vchat_tools(tmp_path, "flip_imag")
    assert bad.returncode == 2 and "did you mean flip_image" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_the_chat_lists_the_same_tools(tmp_path: Path) -> None:
    import io

    from rich.console import Console
    from tests.helpers import make_session

    from vchat.cli.repl import Repl

    out = io.StringIO()
    repl = Repl(make_session(tmp_path), Console(file=out, width=100))
    repl.handle("/tools")
    lines = out.getvalue().splitlines()
    assert _named(lines) == sorted(t.name for t in OFFERED)
    assert max(len(line) for line in lines) <= 100
