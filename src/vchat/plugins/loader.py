"""Find and load plugin tools: each `vchat.tools` entry point names a Tool subclass or a list of them."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from vchat.tools.base import Field, Tool

ENTRY_POINT_GROUP = "vchat.tools"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


@dataclass(frozen=True)
class Plugin:
    """One loaded plugin tool and where it came from."""

    tool: type[Tool]
    package: str  # the distribution that declared it (what `pip install` named)
    version: str
    entry_point: str  # `name = module:attr` as declared


@dataclass
class PluginSet:
    """What the installed plugins offer, and one line for each that could not be loaded."""

    plugins: list[Plugin] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def tools(self) -> list[type[Tool]]:
        """The plugin tool classes, in load order."""
        return [plugin.tool for plugin in self.plugins]

    def package_of(self, name: str) -> str | None:
        """The package a plugin tool came from."""
        return next((p.package for p in self.plugins if p.tool.name == name), None)


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}"


def check_tool(tool: Any) -> str | None:
    """Why this object cannot be a vchat tool, or None when it can."""
    if not (isinstance(tool, type) and issubclass(tool, Tool)):
        return f"{tool!r} is not a subclass of vchat.tools.base.Tool"
    name = getattr(tool, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        return f"{tool.__name__}.name must be lowercase letters, digits and _ (got {name!r})"
    if "__" in name:
        return f"tool name {name!r} has a double underscore, which vchat keeps for MCP servers' tools"
    if not isinstance(getattr(tool, "description", None), str) or not tool.description.strip():
        return f"{name}: description must be a non-empty string"
    if not all(isinstance(f, Field) for f in tool.inputs):
        return f"{name}: inputs must be vchat.tools.base.Field items"
    if tool.run is Tool.run:
        return f"{name}: does not implement run(ctx, **args)"
    return None


def _as_tools(value: Any) -> list[Any]:
    if isinstance(value, type):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


def load_plugins(taken: Iterable[str] = (), entry_points: Iterable[Any] | None = None) -> PluginSet:
    """Load every `vchat.tools` entry point; a plugin that fails is one line in `failures`, never an exception.

    `taken` names tools that already exist (the built-ins): a plugin may not replace one.
    """
    found = PluginSet()
    names = set(taken)
    points = list(metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points)
    for point in sorted(points, key=lambda p: (getattr(p.dist, "name", "") or "", p.name)):
        dist = getattr(point, "dist", None)
        package = str(getattr(dist, "name", None) or point.value.split(":")[0].split(".")[0])
        version = str(getattr(dist, "version", "") or "")
        where = f"plugin {package} ({point.name} = {point.value})"
        try:
            value = point.load()
        except BaseException as exc:  # an import error, or a plugin that calls sys.exit: one line each
            if isinstance(exc, KeyboardInterrupt):
                raise
            found.failures.append(f"{where}: cannot be loaded: {_why(exc)}")
            continue
        for tool in _as_tools(value):
            problem = check_tool(tool)
            if problem is None and tool.name in names:
                problem = f"tool name {tool.name!r} is taken by another tool"
            if problem is not None:
                found.failures.append(f"{where}: {problem}")
                continue
            names.add(tool.name)
            found.plugins.append(Plugin(tool, package, version, f"{point.name} = {point.value}"))
    return found


@functools.cache
def installed_plugins() -> PluginSet:
    """The installed plugins, loaded once per process (reading entry points scans every installed package)."""
    from vchat.tools.registry import all_tools

    return load_plugins(taken=[tool.name for tool in all_tools()])
