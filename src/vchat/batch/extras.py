"""The tools a batch adds to vchat's own: installed plugins and the configured external MCP servers' tools."""

from __future__ import annotations

from collections.abc import Callable

from vchat.config import Settings
from vchat.tools.base import Tool


def extra_tools(settings: Settings) -> tuple[list[Tool], list[str], Callable[[], None]]:
    """Plugin tools and every server's tools (the servers start now: a batch uses them at once).

    Returns the tools, one line per server that did not start, and what stops the servers.
    """
    from vchat.plugins import installed_plugins

    tools: list[Tool] = [cls() for cls in installed_plugins().tools] if settings.plugins else []
    if not settings.mcp_servers:
        return tools, [], lambda: None
    from vchat.mcp_client import ExternalServers

    failures: list[str] = []
    servers = ExternalServers(settings.mcp_servers, warn=failures.append)
    tools.extend(servers.load())
    return tools, failures, servers.close
