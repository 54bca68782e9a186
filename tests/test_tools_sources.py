"""Deferred tool sources: listed once when first needed, never replacing a built-in, stopped last first."""

from __future__ import annotations

from vchat.tools.registry import all_tools
from vchat.tools.sources import ToolSources


def test_a_source_is_listed_once_when_needed_and_never_replaces_a_built_in() -> None:
    builtin = all_tools()[0]
    extra = all_tools()[1]
    tools = {builtin.name: builtin}
    asked: list[str] = []

    def load() -> list:
        asked.append("load")
        return [extra, all_tools()[0]]  # a second tool with the built-in's name

    sources = ToolSources(tools)
    sources.add(load)
    assert sources.tools(builtin.name) is tools and asked == []  # a known name starts nothing
    assert set(sources.tools()) == {builtin.name, extra.name} and asked == ["load"]
    assert tools[builtin.name] is builtin
    sources.tools("missing")
    assert asked == ["load"]  # once only


def test_close_stops_every_source_last_first_and_only_once() -> None:
    stopped: list[str] = []
    sources = ToolSources({})
    sources.add(list, lambda: stopped.append("a"))
    sources.add(list, lambda: stopped.append("b"))
    sources.close()
    sources.close()
    assert stopped == ["b", "a"]
