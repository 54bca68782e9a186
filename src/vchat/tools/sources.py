"""Tool sources that cost something to list (external MCP servers), joined to a session's tools when first needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vchat.tools.base import Tool


class ToolSources:
    """The deferred sources of one tool set, and what stops them when the session closes.

    An external MCP server starts to say what it offers: it is asked once, when the tools are first needed
    (a turn, a `--tool`, `/tools`), and its tools then join the set; a built-in name is never replaced.
    """

    def __init__(self, tools: dict[str, Tool]) -> None:
        self._tools = tools
        self._deferred: list[Callable[[], Sequence[Tool]]] = []
        self._stops: list[Callable[[], None]] = []

    def add(self, load: Callable[[], Sequence[Tool]], stop: Callable[[], None] | None = None) -> None:
        """A source: `load` lists its tools (once), `stop` ends it with the session."""
        self._deferred.append(load)
        if stop is not None:
            self._stops.append(stop)

    def tools(self, needed: str | None = None) -> dict[str, Tool]:
        """The whole tool set, every deferred source loaded first; none is loaded when `needed` is there already."""
        if needed is None or needed not in self._tools:
            while self._deferred:
                for tool in self._deferred.pop(0)():
                    self._tools.setdefault(tool.name, tool)
        return self._tools

    def close(self) -> None:
        """Stop every source that was added, the last first."""
        while self._stops:
            self._stops.pop()()
