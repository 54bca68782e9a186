"""Tools vchat does not ship: installed plugins (entry points) and external MCP servers, wired into a session."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vchat.config import Settings
    from vchat.plugins import PluginSet
    from vchat.session import Session
    from vchat.tools.base import Tool


def plugin_set() -> PluginSet:
    """The installed plugins (loaded once per process)."""
    from vchat.plugins import installed_plugins

    return installed_plugins()


def plugin_tools(settings: Settings) -> list[Tool]:
    """One instance of every plugin tool (none when `plugins = false`)."""
    return [cls() for cls in plugin_set().tools] if settings.plugins else []


def plugin_tool_class(settings: Settings, name: str) -> type[Tool] | None:
    """The plugin tool class with this name, if one is installed and plugins are on."""
    return next((cls for cls in plugin_set().tools if cls.name == name), None) if settings.plugins else None


def is_external(settings: Settings, name: str) -> bool:
    """True for `NAME__TOOL` where NAME is a configured MCP server (its tools are known once it starts)."""
    return external_server_of(settings, name) is not None


def find_session_tool(session: Session, name: str) -> Tool:
    """The session's tool `name` (external servers started if it is theirs), as `chat.calls.find_tool` finds it.

    A configured server's `NAME__TOOL` that its server does not offer is not a typo but a server fault.
    """
    from vchat.chat.calls import UnknownTool, find_tool
    from vchat.errors import VchatError

    try:
        return find_tool(session.sources.tools(name), name)
    except UnknownTool:
        server = external_server_of(session.settings, name)
        if server is None:
            raise
        raise VchatError(f"{name} is not available: MCP server {server} does not offer it (see above)") from None


def external_server_of(settings: Settings, name: str) -> str | None:
    """The configured MCP server a `NAME__TOOL` name calls, if any."""
    from vchat.mcp_client.remote import external_server

    return external_server(name, settings.mcp_servers)


def _warn(line: str) -> None:
    from rich.console import Console

    from vchat.ui.render import print_warning

    print_warning(Console(stderr=True, highlight=False, soft_wrap=True), line)


def attach_servers(session: Session, settings: Settings) -> None:
    """The session offers the configured servers' tools once it first needs its tools, and stops them with it."""
    if not settings.mcp_servers:
        return
    from vchat.mcp_client import ExternalServers

    servers = ExternalServers(settings.mcp_servers, warn=_warn)
    session.sources.add(servers.load, servers.close)
