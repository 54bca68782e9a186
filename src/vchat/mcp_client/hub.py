"""The external MCP servers of one session: started when their tools are first needed, stopped with the session."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from vchat.mcp_client.connection import Connection, EventLoop, ServerFailed
from vchat.mcp_client.remote import McpTool, make_tool
from vchat.mcp_config import McpServer


@dataclass
class ServerStatus:
    """One server as `vchat tools` and `vchat doctor` report it: its tools, or why it has none."""

    name: str
    target: str  # its command or URL
    tools: list[type[McpTool]]
    failure: str | None = None
    skipped: list[str] | None = None  # names its `tools = [...]` asked for that it does not have


class ExternalServers:
    """Connections to the configured servers, sharing one event-loop thread."""

    def __init__(self, servers: Mapping[str, McpServer], warn: Callable[[str], None] | None = None) -> None:
        self.loop = EventLoop()
        self.connections = {name: Connection(spec, self.loop) for name, spec in servers.items()}
        self.warn = warn
        self.statuses: dict[str, ServerStatus] = {}

    def status(self, name: str) -> ServerStatus:
        """Start one server (once) and read its tools; a failure is kept as one line."""
        if name in self.statuses:
            return self.statuses[name]
        connection = self.connections[name]
        spec = connection.spec
        try:
            listing = connection.start()
        except ServerFailed as exc:
            status = ServerStatus(name, connection.describe(), [], failure=str(exc))
        else:
            wanted = set(spec.tools) if spec.tools is not None else None
            classes = [make_tool(name, t) for t in listing if wanted is None or t.name in wanted]
            missing = sorted(wanted - {t.name for t in listing}) if wanted is not None else []
            status = ServerStatus(name, connection.describe(), classes, skipped=missing)
        self.statuses[name] = status
        return status

    def load(self) -> list[McpTool]:
        """Every server's tools, ready to run; a server that fails is one warning and offers nothing."""
        tools: list[McpTool] = []
        for name, connection in self.connections.items():
            status = self.status(name)
            if status.failure and self.warn is not None:
                self.warn(f"{status.failure}; going on without its tools")
            if status.skipped and self.warn is not None:
                self.warn(f"MCP server {name} has no tool {', '.join(status.skipped)} (its tools = [...] names it)")
            tools.extend(cls(connection) for cls in status.tools)
        return tools

    def close(self) -> None:
        """Stop every server this session started, then the event loop."""
        for connection in self.connections.values():
            connection.stop()
        self.loop.close()
