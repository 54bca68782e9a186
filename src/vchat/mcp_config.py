"""The `[mcp_servers.NAME]` config tables: the external MCP servers whose tools vchat offers, checked on load."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vchat.errors import ConfigError


@dataclass
class McpServer:
    """One `[mcp_servers.NAME]` table (or `--mcp NAME=COMMAND`): an external MCP server whose tools vchat offers."""

    name: str
    command: list[str] = field(default_factory=list)  # stdio: the program and its arguments
    env: dict[str, str] = field(default_factory=dict)  # stdio: extra environment for the program
    url: str | None = None  # streamable HTTP, instead of a command
    headers: dict[str, str] = field(default_factory=dict)  # HTTP: sent with every request ($VAR expanded)
    tools: list[str] | None = None  # offer only these of its tools (None: all)
    timeout: float = 300.0  # seconds one call may take
    start_timeout: float = 60.0  # seconds starting it and listing its tools may take


def mcp_server(name: str, table: Mapping[str, Any], origin: str) -> McpServer:
    """Check one `[mcp_servers.NAME]` table and build its McpServer."""
    where = f"{origin}: [mcp_servers.{name}]"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or "__" in name:  # NAME__TOOL: a function name, unambiguous
        raise ConfigError(f"{where}: a server name is lowercase letters, digits and single _, starting with a letter")
    unknown = set(table) - {"command", "args", "env", "url", "headers", "tools", "timeout", "start_timeout"}
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
    command, url, args = table.get("command"), table.get("url"), table.get("args", [])
    command = shlex.split(command) if isinstance(command, str) else command
    if (command is None) == (url is None):
        raise ConfigError(f'{where}: give either command = [...] (stdio) or url = "http://..." (HTTP)')
    if command is not None and (not command or not all(isinstance(c, str) for c in [*command, *args])):
        raise ConfigError(f'{where}: command is a program and its arguments, e.g. ["vchat", "mcp"]')
    if url is not None and not (isinstance(url, str) and url.lower().startswith(("http://", "https://"))):
        raise ConfigError(f"{where}: url must start with http:// or https://, not {url!r}")
    env, headers = table.get("env", {}), table.get("headers", {})
    for key, value, what in (("env", env, "variable"), ("headers", headers, "header")):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{where}: {key} maps {what} names to strings")
    if headers and url is None:
        raise ConfigError(f"{where}: headers go with url (HTTP); a command gets env instead")
    tools = table.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, str) for t in tools)):
        raise ConfigError(f"{where}: tools is a list of the server's tool names")
    server = McpServer(name, [*command, *args] if command else [], dict(env), url, dict(headers), tools)
    for key in ("timeout", "start_timeout"):
        value = table.get(key, getattr(server, key))
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {key} = {value!r} is not a valid float") from None
        if not seconds > 0:  # (nan too)
            raise ConfigError(f"{where}: {key} must be positive (seconds)")
        setattr(server, key, seconds)
    return server
