"""An external MCP server's tool as a vchat Tool: `NAME__TOOL`, its inputs bound like any tool's, images as handles."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, ClassVar

from vchat.errors import ToolError
from vchat.mcp_client.fields import brief, describe, read_inputs
from vchat.mcp_client.images import read_result, send_image
from vchat.store.images import ImageRef
from vchat.tools.base import Tool, ToolContext, ToolResult

if TYPE_CHECKING:
    import mcp_types as types

    from vchat.mcp_client.connection import Connection

SEPARATOR = "__"
NAME_MAX = 64  # an OpenAI function name's limit
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def external_server(name: str, servers: Collection[str]) -> str | None:
    """The configured server a `NAME__TOOL` name calls (its tools are known once it starts), else None."""
    server, sep, rest = name.partition(SEPARATOR)
    return server if sep and rest and server in servers else None


def tool_name(server: str, remote: str) -> str:
    """`NAME__TOOL`, valid as a function name and as a ReAct action."""
    return f"{server}{SEPARATOR}{_UNSAFE.sub('_', remote)}"[:NAME_MAX]


class McpTool(Tool):
    """A tool of an external MCP server; each listed tool is a subclass made by `make_tool`."""

    server: ClassVar[str] = ""
    remote: ClassVar[str] = ""  # its name on the server
    image_forms: ClassVar[dict[str, str]] = {}
    json_fields: ClassVar[frozenset[str]] = frozenset()
    output = "text"  # or images, as the server decides per call

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Send the call (images as the server asks), wait under the time limit, read the result back."""
        sent: dict[str, Any] = {}
        shown: dict[str, Any] = {}
        parents: list[str] = []
        for key, value in args.items():
            if value is None:
                continue  # an optional input the model left out: the server's own default applies
            if isinstance(value, ImageRef):
                sent[key] = send_image(ctx, value, self.image_forms.get(key, "data_uri"))
                shown[key] = value.handle
                parents.append(value.handle)
            elif key in self.json_fields and isinstance(value, str):
                try:
                    sent[key] = shown[key] = json.loads(value)
                except json.JSONDecodeError:
                    raise ToolError(f'{key} must be JSON, e.g. [1, 2] or {{"a": 1}}') from None
            else:
                sent[key] = shown[key] = value

        def progress(done: float, total: float | None, message: str | None) -> None:
            label = message or self.name
            if total and total > 0:
                ctx.progress(min(round(done / total * 100), 100), 100, label)
            else:
                ctx.progress(int(done), 0, label)

        result = self.connection.call(self.remote, sent, on_progress=progress, check_cancelled=ctx.check_cancelled)
        where = f"MCP server {self.server}"
        if result.is_error:
            text = " ".join(
                " ".join(getattr(block, "text", "").split()) for block in result.content if hasattr(block, "text")
            )
            raise ToolError(text[:300] or f"{where} reported an error")
        returned = read_result(result, self.connection.read_resource, ctx.settings.max_image_pixels, where)
        made: list[ImageRef] = []
        params = {"mcp_server": self.server, "mcp_tool": self.remote, **shown}
        for image in returned.images:
            made.append(ctx.save_image(image, tool=self.name, params=params, parents=tuple(parents)))
        mapping: dict[str, str] = {}
        if len(returned.remote_handles) == len(made):  # a vchat server: its names become ours
            mapping = {name.lower(): ref.handle for name, ref in zip(returned.remote_handles, made, strict=True)}
        if mapping and len(returned.remote_parents) == len(parents):
            mapping.update({name.lower(): mine for name, mine in zip(returned.remote_parents, parents, strict=True)})
        return ToolResult(_local_text(returned.text, mapping), made)


def _local_text(text: str, mapping: dict[str, str]) -> str:
    """A vchat server's text names its own handles and paths: drop the path lines and say ours instead."""
    if not mapping:
        return text
    lines = [line for line in text.splitlines() if not re.match(r"^\s*\S+: /", line)]
    kept = "\n".join(line for line in lines if not line.strip().lower().startswith("new image"))
    return re.sub(r"\b(img\d+)\b", lambda m: mapping.get(m.group(1).lower(), "an input"), kept).strip()


def make_tool(server: str, listed: types.Tool) -> type[McpTool]:
    """A Tool subclass for one listed tool: its fields from the input schema, its prompt line from its description."""
    inputs = read_inputs(listed.input_schema)
    name = tool_name(server, listed.name)
    description = describe(listed.description, f"{listed.name} (from MCP server {server})")
    attributes: dict[str, Any] = {
        "name": name,
        "description": f"{description} [MCP server {server}]",
        "brief": brief(listed.description or "") or listed.name.replace("_", " "),
        "inputs": inputs.fields,
        "server": server,
        "remote": listed.name,
        "image_forms": dict(inputs.image_forms),
        "json_fields": inputs.json_fields,
        "__module__": __name__,
    }
    return type(f"Mcp_{name}", (McpTool,), attributes)
