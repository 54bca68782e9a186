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


@pytest.mark.parametrize("name", ["config.py", "errors.py", "userfiles.py", "mcp_config.py"])
def test_bottom_layer_imports_no_other_vchat_module(name: str) -> None:
    imports = _imports(SRC / name, top_level_only=False)
    allowed = {
        "config.py": {"vchat.errors", "vchat.userfiles", "vchat.mcp_config"},
        "userfiles.py": {"vchat.errors"},
        "mcp_config.py": {"vchat.errors"},
    }.get(name, set())
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


# -- the import graph -----------------------------------------------------------------------
# Every import of a vchat module counts: at module level, inside functions, and under
# `if TYPE_CHECKING:` too (a type-only import still ties the two modules' designs together).

# Lowest first; a module may import its own layer or any layer below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("vchat", "vchat.config", "vchat.errors", "vchat.mcp_config"),
    ("vchat.store", "vchat.runtime"),
    ("vchat.tools",),
    ("vchat.mcp_client", "vchat.plugins"),  # tools vchat does not ship: external MCP servers, installed packages
    ("vchat.react", "vchat.llm"),
    ("vchat.chat",),
    ("vchat.agent",),
    ("vchat.session", "vchat.resume"),
    ("vchat.batch", "vchat.mcp_server", "vchat.bench"),
    ("vchat.ui",),
    ("vchat.cli",),
    ("vchat.entry", "vchat.__main__"),
)
MODULE_NAMES = {_module(path): path for path in MODULES}


def _layer(module: str) -> int:
    best, rank = "", -1
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, rank = name, index
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS"
    return rank


def _target(name: str) -> str | None:
    """The vchat module an import names (`from vchat.x import y` may name module x.y or a member of x)."""
    while name and name not in MODULE_NAMES:
        name = name.rpartition(".")[0]
    return name or None


def _vchat_imports(path: Path) -> set[str]:
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            target = _target(name) if name.split(".")[0] == "vchat" else None
            if target is not None and target != module:
                found.add(target)
    # `from vchat.x import y` also names the package x; only the most specific target counts.
    return {t for t in found if not any(other.startswith(t + ".") for other in found)} | {
        t for t in found if t in ("vchat",)
    }


GRAPH = {module: _vchat_imports(path) for module, path in MODULE_NAMES.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle() -> None:
    circles = _circles(GRAPH)
    assert not circles, "\n".join(" <-> ".join(group) for group in circles)


def test_nothing_imports_a_higher_layer() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _layer(target) > _layer(module)
    )
    assert not upward, "\n".join(upward)


def test_package_top_level_stays_small() -> None:
    loose = sorted(path.name for path in SRC.glob("*.py"))
    assert len(loose) <= 12, loose


@pytest.mark.parametrize("path", MODULES, ids=_module)
def test_no_module_over_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"{_module(path)} has {lines} lines"


def test_private_members_stay_private() -> None:
    """ruff's SLF001 on src/: a `# noqa: SLF001` must say why on its line."""
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "SLF001", "--output-format", "concise", str(SRC)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout
    for path in MODULES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "noqa: SLF001" in line:
                why = line.split("noqa: SLF001", 1)[1].strip(" :-,")
                assert why, f"{_module(path)}:{number} silences SLF001 without saying why"


# The bench reads the built-in planner's per-reply stats (`LocalLLM.last`) until llm/local.py (kept by the
# planner's engineer) reports them as `last_usage`, the capability every backend has.
LLM_PROBES_KNOWN = {("vchat.bench.runner", "last")}


def test_no_code_probes_a_language_model_with_getattr() -> None:
    """Backends declare their capabilities on the `LLM` base class; callers ask them, never probe."""
    found: set[tuple[str, str]] = set()
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
            ):
                continue
            target = ast.unparse(node.args[0]) if node.args else ""
            if target.split(".")[-1] in ("llm", "_llm", "current", "backend") and len(node.args) > 1:
                name = node.args[1].value if isinstance(node.args[1], ast.Constant) else ast.unparse(node.args[1])
                found.add((_module(path), str(name)))
    assert found <= LLM_PROBES_KNOWN, sorted(found - LLM_PROBES_KNOWN)
