"""Every tool works after the plain install: what the tools import is a normal dependency."""

from __future__ import annotations

import ast
import contextlib
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# The code a tool call runs: the tools, the model runtime that loads their weights, and the previews of results.
TOOL_PATHS = ("src/vchat/tools", "src/vchat/runtime", "src/vchat/ui")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def base_closure() -> set[str]:
    """Distributions a plain `pip install .` brings: the base dependencies and theirs, without any extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(text) for text in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = _name(req.name)
        if name in seen:
            continue
        seen.add(name)
        with contextlib.suppress(metadata.PackageNotFoundError):  # not installed: its imports are not checked
            todo += [Requirement(text) for text in metadata.requires(req.name) or []]
    return seen


def imported_modules(folder: Path) -> dict[str, Path]:
    """Top-level modules imported anywhere in the folder's code, inside functions too (the lazy imports)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], path)
    return found


def test_every_module_a_tool_imports_comes_with_the_plain_install() -> None:
    closure = base_closure()
    owners = metadata.packages_distributions()
    missing = []
    for folder in TOOL_PATHS:
        for module, path in imported_modules(ROOT / folder).items():
            if module in sys.stdlib_module_names or module in ("vchat", "__future__"):
                continue
            dists = {_name(d) for d in owners.get(module, [])}
            if not dists:
                pytest.fail(f"{module} (imported in {path.relative_to(ROOT)}) is not installed here")
            if not dists & closure:
                missing.append(f"{module} ({', '.join(sorted(dists))}) imported in {path.relative_to(ROOT)}")
    assert not missing, "not brought by a plain install: " + "; ".join(missing)


def test_annotators_are_not_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(Requirement(text).name) for text in project["dependencies"]}
    assert {"controlnet-aux", "scipy"} <= base
    extras = project.get("optional-dependencies", {})
    assert "annotators" not in extras
