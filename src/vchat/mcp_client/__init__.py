"""vchat as an MCP client: the tools of external MCP servers offered next to vchat's own (`NAME__TOOL`)."""

from __future__ import annotations

from vchat.mcp_client.hub import ExternalServers, ServerStatus
from vchat.mcp_client.remote import SEPARATOR, McpTool, tool_name

__all__ = ["SEPARATOR", "ExternalServers", "McpTool", "ServerStatus", "tool_name"]
