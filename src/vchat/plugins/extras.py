"""The tools a batch or a bench adds to vchat's own: installed plugins and the configured MCP servers' tools."""

from __future__ import annotations

from collections.abc import Callable

from vchat.config import Settings
from vchat.tools.base import Tool


def extra_tools(settings: Settings, servers: bool = True) -> tuple[list[Tool], list[str], Callable[[], None]]:
    """Plugin tools and every server's tools (the servers start now: a batch or a bench uses them at once).

    Returns the tools, one line per server that did not start, and what stops the servers. `servers=False`
    leaves the servers alone (a run that cannot call their tools need not start them).
    """
    from vchat.plugins import installed_plugins

    tools: list[Tool] = [cls() for cls in installed_plugins().tools] if settings.plugins else []
    if not settings.mcp_servers or not servers:
        return tools, [], lambda: None
    from vchat.mcp_client import ExternalServers

    external = ExternalServers(settings.mcp_servers)
    tools.extend(external.load())
    failures = [status.failure for status in external.statuses.values() if status.failure]
    return tools, failures, external.close
