"""Import rules of DESIGN.md, checked on the source, and a fast `vchat --help`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vchat"
HEAVY = ("torch", "diffusers", "transformers", "accelerate", "controlnet_aux")


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _module(path: Path) -> str:
    return path.relative_to(SRC.parent).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=_module)
def test_every_module_has_a_docstring(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{_module(path)} has no docstring"


def test_agent_stays_free_of_terminal_and_tools() -> None:
    imports = _imports(SRC / "agent.py", top_level_only=False)
    for banned in ("rich", "prompt_toolkit", "typer", "torch"):
        assert not any(i == banned or i.startswith(banned + ".") for i in imports), banned
    assert not any(i.startswith("vchat.tools.") and i != "vchat.tools.base" for i in imports)
    assert not any(i.startswith("vchat.ui") for i in imports)


@pytest.mark.parametrize("name", ["config.py", "errors.py", "userfiles.py"])
def test_bottom_layer_imports_no_other_vchat_module(name: str) -> None:
    imports = _imports(SRC / name, top_level_only=False)
    allowed = {"config.py": {"vchat.errors", "vchat.userfiles"}, "userfiles.py": {"vchat.errors"}}.get(name, set())
    assert {i for i in imports if i.startswith("vchat")} <= allowed


def test_only_ui_and_the_cli_layer_use_rich() -> None:
    allowed_prefixes = ("vchat.ui", "vchat.cli")
    for path in MODULES:
        if _module(path).startswith(allowed_prefixes):
            continue
        imports = _imports(path, top_level_only=True)
        assert not any(i == "rich" or i.startswith("rich.") for i in imports), _module(path)


def test_tools_do_not_import_the_session_or_ui() -> None:
    for path in (SRC / "tools").rglob("*.py"):
        imports = _imports(path, top_level_only=False)
        assert not any(i.startswith(("vchat.session", "vchat.ui", "vchat.cli.app", "vchat.agent")) for i in imports)


def test_no_heavy_import_at_module_level_anywhere() -> None:
    for path in MODULES:
        top = _imports(path, top_level_only=True)
        assert not any(i.split(".")[0] in HEAVY for i in top), f"{_module(path)} imports a heavy library at top level"


def test_import_cli_keeps_heavy_libraries_out() -> None:
    code = (
        "import sys, vchat.cli.app, vchat.session, vchat.cli.repl, vchat.cli.run_once; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_runs_without_heavy_libraries() -> None:
    code = (
        "import sys\nfrom vchat.cli.app import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in out.stdout or out.stdout.rstrip().endswith("HEAVY=")
