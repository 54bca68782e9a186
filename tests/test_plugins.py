"""Python plugins: examples/plugin installed with pip into a temporary target, and a broken one as an entry-point shim.

The example is installed for real (`pip install --no-deps --no-build-isolation --target`, from a copy, so the
checkout gets no build folders); the broken plugin is a hand-written `.dist-info` folder whose entry point names a
module that fails to import: that is all an installed package is to `importlib.metadata`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from tests.helpers import act, answer, write_photo

from vchat.config import Settings
from vchat.plugins import load_plugins
from vchat.plugins.loader import check_tool
from vchat.store.refs import read_png_record
from vchat.tools.base import Field, Tool, ToolResult
from vchat.tools.registry import all_tools

ROOT = Path(__file__).resolve().parents[1]


def _shim(folder: Path) -> Path:
    """A 'package' whose entry point fails to import, as pip would leave it on disk."""
    (folder / "broken_vchat_plugin.py").write_text("import no_such_module_anywhere\n")
    info = folder / "broken_vchat_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-vchat-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vchat.tools]\nbroken = broken_vchat_plugin:Broken\n")
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the example plugin (pip-installed) and the broken shim, for PYTHONPATH / sys.path."""
    tmp = tmp_path_factory.mktemp("plugins")
    source = tmp / "source"
    shutil.copytree(ROOT / "examples" / "plugin", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp / "site"
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run([*command, "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return _shim(target)


@pytest.fixture
def on_path(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(site))
    from vchat.plugins import installed_plugins

    installed_plugins.cache_clear()
    yield site
    installed_plugins.cache_clear()
    for name in [m for m in sys.modules if m.startswith(("vchat_example_plugin", "broken_vchat_plugin"))]:
        del sys.modules[name]


def _vchat(tmp_path: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), XDG_DATA_HOME=str(tmp_path / "data"), COLUMNS="200")
    env.update(NO_COLOR="1", VCHAT_OUT=str(tmp_path / "out"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "vchat", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)


def test_vchat_plugins_lists_tools_with_their_package_and_one_line_per_failure(tmp_path: Path, site: Path) -> None:
    result = _vchat(tmp_path, site, "plugins")
    assert result.returncode == 1  # a plugin failed to load: a script can tell
    lines = result.stdout.splitlines()
    assert any(line.startswith("posterize") and "vchat-example-plugin 0.1.0" in line for line in lines)
    assert any(line.startswith("depth_bands") and "vchat-example-plugin 0.1.0" in line for line in lines)
    assert result.stderr.count("\n") == 1, result.stderr
    assert "plugin broken-vchat-plugin (broken = broken_vchat_plugin:Broken): cannot be loaded:" in result.stderr
    assert "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in result.stderr


def test_plugin_tools_are_listed_and_run_from_the_command_line(tmp_path: Path, site: Path) -> None:
    listed = _vchat(tmp_path, site, "tools")
    assert listed.returncode == 0, listed.stderr
    section = listed.stdout.split("plugin vchat-example-plugin")[1]
    assert "posterize" in section and "depth_bands" in section
    photo = write_photo(tmp_path, width=64, height=48)
    ran = _vchat(tmp_path, site, "run", "--tool", "posterize", "-i", str(photo), "--arg", "levels=2", "--json")
    assert ran.returncode == 0, ran.stderr
    made = next(i for i in json.loads(ran.stdout)["images"] if i["tool"] == "posterize")
    assert len(np.unique(np.asarray(Image.open(made["path"]).convert("RGB")))) <= 2  # two levels per channel
    script = tmp_path / "script.txt"
    script.write_text(f"{act('posterize', json.dumps({'image': 'img1', 'levels': 4}))}\n---\n{answer('img2')}\n")
    asked = _vchat(tmp_path, site, "run", "make a poster", "-i", str(photo), "--llm", f"scripted:{script}", "--json")
    assert asked.returncode == 0, asked.stderr
    report = json.loads(asked.stdout)
    assert report["final"] == "img2" and [i["tool"] for i in report["images"]] == [None, "posterize"]


def test_the_repl_tool_command_runs_a_plugin_tool(tmp_path: Path, on_path: Path) -> None:
    from vchat.cli.repl import Repl
    from vchat.cli.wiring import build_session

    session, _ = build_session(Settings(out_dir=tmp_path / "out"), llm="skip")
    try:
        session.attach(write_photo(tmp_path))
        out = io.StringIO()
        Repl(session, Console(file=out, width=200, highlight=False)).handle("/tool posterize img1 levels=8")
        made = [ref for ref in session.store if ref.tool == "posterize"]
        assert len(made) == 1 and "posterized to 8 levels" in out.getvalue()
        record = read_png_record(made[0].path)
        assert record is not None and record["params"] == {"levels": 8} and record["parents"] == ["img1"]
    finally:
        session.close()


def test_a_plugin_tool_loads_its_model_through_the_shared_runtime(
    tmp_path: Path, on_path: Path, make_manager: Any, one_torch_thread: None
) -> None:
    from vchat.cli.extras import plugin_tools
    from vchat.session import Session

    manager = make_manager()
    settings = Settings(out_dir=tmp_path / "out")
    session = Session(settings, [*all_tools(), *plugin_tools(settings)], models=manager)
    try:
        session.attach(write_photo(tmp_path, width=64, height=48))
        step = session.run_tool("depth_bands", named={"image": "img1", "bands": 3})
        assert step.images, step.observation
        assert Image.open(step.images[0].path).size == (64, 48)
        assert len(np.unique(np.asarray(Image.open(step.images[0].path)))) <= 3
        # The depth model is a component of the session's runtime, like vchat's own tools' models.
        assert {"depth", "depth.processor"} <= set(manager.resident())
    finally:
        session.close()


class _Good(Tool):
    name = "good_tool"
    description = "does good"
    inputs = (Field("image", "image", "an image"),)

    def run(self, ctx: Any, **args: Any) -> ToolResult:
        return ToolResult("ok")


class _NoRun(Tool):
    name = "no_run"
    description = "forgot run"


class _Clash(_Good):
    name = "canny_edges"


class _Dunder(_Good):
    name = "a__b"


class _Point:
    """An entry point as importlib.metadata gives one, loading a fixed value."""

    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value, self._loaded = name, f"pkg.mod:{name}", value
        self.dist = None  # no distribution: the package is named after the module

    def load(self) -> Any:
        if isinstance(self._loaded, BaseException):
            raise self._loaded
        return self._loaded


def test_load_plugins_keeps_good_tools_and_says_why_each_other_one_was_skipped() -> None:
    points = [
        _Point("good", _Good),
        _Point("several", [_NoRun, _Clash, _Dunder, "not a tool"]),
        _Point("exits", SystemExit(3)),
    ]
    found = load_plugins(taken=[t.name for t in all_tools()], entry_points=points)
    assert found.tools == [_Good]
    assert len(found.failures) == 5 and all("\n" not in line for line in found.failures)
    said = " | ".join(found.failures)
    assert "no_run: does not implement run(ctx, **args)" in said
    assert "tool name 'canny_edges' is taken by another tool" in said
    assert "double underscore" in said and "is not a subclass of vchat.tools.base.Tool" in said
    assert "cannot be loaded: SystemExit: 3" in said
    assert check_tool(_Good) is None
