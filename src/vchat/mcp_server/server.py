"""The MCP server: vchat's tools, one vchat session per client over one shared runtime; calls in worker threads."""

from __future__ import annotations

import base64
import contextlib
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlparse

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from vchat import __version__
from vchat.chat.calls import UnknownTool, find_tool
from vchat.errors import Cancelled, VchatError
from vchat.mcp_server.clean import without_surrogates
from vchat.mcp_server.inputs import URI_SCHEME, Roots, handle_of_uri, image_uri, is_path_like
from vchat.mcp_server.preview import encode_preview
from vchat.mcp_server.progress import Progress
from vchat.mcp_server.schema import OUTPUT_SCHEMA, input_schema
from vchat.mcp_server.workspaces import Workspace, Workspaces
from vchat.session import Observers
from vchat.tools.base import offered
from vchat.tools.registry import capability, tool_class

if TYPE_CHECKING:
    from vchat.chat.steps import Step
    from vchat.config import Settings
    from vchat.store.images import ImageRef
    from vchat.tools.base import Tool

T = TypeVar("T")
__all__ = ["Progress", "ServerOptions", "VchatServer", "tool_error"]
STATE_KEY = "vchat.workspace"  # where a connection with a protocol session keeps its workspace


@dataclass
class ServerOptions:
    """What `vchat mcp` was told: readable folders and how previews are made."""

    allow: list[Path] = field(default_factory=list)
    preview_size: int = 512  # long side of the preview in pixels; 0: no image content, links only
    preview_format: str = "auto"  # auto | png | jpeg


def tool_error(message: str) -> types.CallToolResult:
    """A failed call as the client's model should see it: one line, flagged as an error."""
    line = without_surrogates(" ".join(message.split())) or "the tool failed"
    return types.CallToolResult(content=[types.TextContent(text=line)], is_error=True)


def _root_paths(result: types.ListRootsResult) -> list[Path]:
    return [Path(unquote(urlparse(str(r.uri)).path)) for r in result.roots if str(r.uri).startswith("file://")]


def _connection(ctx: ServerRequestContext[Any]) -> Any:
    # The lowlevel context has no public accessor for the Connection (mcp 2.3: only the higher-level Context has
    # one); its session id and per-connection state are what tell one HTTP client from another.
    return getattr(ctx.session, "_connection", None)


class VchatServer:
    """The MCP server: each client gets a vchat session of its own; model calls take turns on the one runtime."""

    def __init__(
        self,
        settings: Settings,
        tools: Sequence[Tool],
        options: ServerOptions,
        *,
        listed: Sequence[Tool] | None = None,
        over_http: bool = False,
    ) -> None:
        self.options = options
        self.over_http = over_http
        self.static_roots = Roots(list(options.allow))
        # Every served tool is callable (old capability names are aliases of their family's member) ...
        self.tools: dict[str, Tool] = {tool.name: tool for tool in tools}
        # ... and the list shows them as the prompt offers them: families, and the tools outside them.
        self.listed: list[Tool] = list(listed) if listed is not None else offered(tools)
        self.workspaces = Workspaces(settings, tools, list(options.allow))
        self._single: Workspace | None = None  # stdio: the one client's
        # Tools with weights share the runtime's pipelines and placement: one such call at a time. Model-free
        # tools of different clients run side by side.
        self._runtime_lock = anyio.Lock()
        self.server: Server[Any] = Server(
            "vchat",
            version=__version__,
            title="vchat visual tools",
            instructions=self.instructions(),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_read_resource=self._read_resource,
        )

    def instructions(self) -> str:
        """What the client's model is told about the server as a whole."""
        roots = ", ".join(str(p) for p in self.options.allow) or "none (use handles or data: URIs)"
        return (
            "vchat: visual tools (generate, edit, detect, segment, caption, transform images). Image inputs take a "
            "handle from an earlier call (img3, or the vchat:// URI a result gives as its handle), a file path "
            "under the allowed folders, or a data: URI. Every result gives a preview, the new image's handle to "
            f"chain calls with, its path and a resource link to the full-size PNG. Allowed folders: {roots}."
        )

    def tool_list(self) -> list[types.Tool]:
        """Every listed tool as an MCP tool, its input schema rendered from its field specs."""
        return [
            types.Tool(
                name=tool.name,
                title=tool.name.replace("_", " ").capitalize(),
                description=tool.description,
                input_schema=input_schema(type(tool)),
                output_schema=OUTPUT_SCHEMA,
                annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
            )
            for tool in self.listed
        ]

    def close(self) -> None:
        """Release every client's session (the server's end)."""
        self.workspaces.close_all()

    # -- which client ------------------------------------------------------------------------
    def _own(self, ctx: ServerRequestContext[Any]) -> Workspace | None:
        """The caller's workspace when the transport tells clients apart (stdio; HTTP with a protocol session)."""
        if not self.over_http:
            if self._single is None:
                self._single = self.workspaces.new(stateless=False)
            return self._single
        connection = _connection(ctx)
        if connection is None or connection.session_id is None:
            return None  # 2026-07-28 over HTTP: no protocol session
        workspace = connection.state.get(STATE_KEY)
        if workspace is None:
            workspace = connection.state[STATE_KEY] = self.workspaces.new(stateless=False)
            connection.exit_stack.push_async_callback(self._end, workspace)
        return workspace

    def _workspace(self, ctx: ServerRequestContext[Any], tool: Tool, arguments: dict[str, Any]) -> Workspace:
        """The session a call runs in: the client's own, or for a stateless client the one its URIs name.

        A stateless call that names none starts a new session (`Workspace.calls` is 0 until it is used).
        """
        own = self._own(ctx)
        if own is not None:
            return own
        for spec in tool.inputs:
            value = arguments.get(spec.name)
            if spec.kind == "image" and isinstance(value, str):
                found = self.workspaces.of_uri(value)
                if found is not None and found.stateless:
                    return found
        workspace = self.workspaces.new(stateless=True)
        workspace.inputs.stateless = True
        workspace.inputs.foreign = self._published
        return workspace

    def _published(self, uri: str) -> ImageRef | None:
        """A finished image of any stateless workspace, by URI (the URI's secret is the permission)."""
        workspace = self.workspaces.of_uri(uri)
        if workspace is None or not workspace.stateless:
            return None
        return workspace.published.get(urlparse(uri.strip()).path.strip("/").lower())

    async def _end(self, workspace: Workspace) -> None:
        """A protocol session ended (the client closed it or it timed out): its vchat session is closed."""
        with anyio.CancelScope(shield=True):
            async with workspace.lock:
                self.workspaces.close(workspace, forget=True)

    # -- handlers ------------------------------------------------------------------------------
    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tool_list())

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        try:
            tool = find_tool(self.tools, params.name, lister="tools/list")
        except UnknownTool as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        # A lone surrogate cannot be encoded in the reply that would quote it: the client would wait forever.
        arguments = without_surrogates(dict(params.arguments or {}))
        workspace: Workspace | None = None
        first = False
        try:
            roots = await self._client_roots(ctx, params, tool, arguments)
            if isinstance(roots, types.InputRequiredResult):
                return roots
            workspace = self._workspace(ctx, tool, arguments)
            cancelled = threading.Event()
            progress = Progress(ctx.session.report_progress, cancelled, workspace.session)
            needs_models = bool(getattr(tool_class(capability(tool.name, arguments)) or tool, "components", ()))
            async with workspace.lock:
                first = workspace.calls == 0
                workspace.calls += 1
                self.workspaces.touch(workspace)
                if needs_models and self._runtime_lock.locked():
                    await progress.waiting("waiting: another client's call is using the models")
                async with self._runtime_lock if needs_models else contextlib.nullcontext():
                    result = await self._in_worker(
                        workspace, lambda: self._call_sync(workspace, tool, arguments, roots, progress), progress
                    )
                workspace.publish()
            return result
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:  # never a crash of the server: the client hears one line
            detail = str(exc).splitlines()[0] if str(exc) else ""
            return tool_error(f"{tool.name} failed: {type(exc).__name__}{': ' + detail if detail else ''}")
        finally:
            # A stateless chain whose first call made nothing leaves nothing (no folder, no index entry).
            made = workspace is not None and any(ref.tool is not None for ref in workspace.session.store)
            if first and workspace is not None and workspace.stateless and not made:
                self.workspaces.close(workspace, forget=True)

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        own = self._own(ctx)
        if own is None:  # a stateless client has no images of its own to list: it holds their URIs
            return types.ListResourcesResult(resources=[])
        resources = [
            types.Resource(
                name=ref.handle,
                uri=image_uri(own.name, ref.handle),
                description=ref.describe(),
                mime_type="image/png",
            )
            for ref in list(own.published.values())
        ]
        return types.ListResourcesResult(resources=resources)

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        own = self._own(ctx)
        workspace = own or self.workspaces.of_uri(uri)
        if workspace is None or not uri.startswith(f"{URI_SCHEME}://"):
            raise MCPError(types.INVALID_PARAMS, f"no image {uri} on this server")
        try:
            handle = handle_of_uri(uri, workspace.name)
        except VchatError as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        ref = workspace.published.get((handle or "").lower())
        if ref is None:
            raise MCPError(types.INVALID_PARAMS, f"no image {uri} in this client's vchat session")
        data = await anyio.to_thread.run_sync(ref.path.read_bytes)
        blob = base64.b64encode(data).decode("ascii")
        contents = types.BlobResourceContents(uri=uri, mime_type="image/png", blob=blob)
        return types.ReadResourceResult(contents=[contents])

    # -- the pieces of a call ------------------------------------------------------------------
    async def _client_roots(
        self,
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
        tool: Tool,
        arguments: dict[str, Any],
    ) -> list[Path] | types.InputRequiredResult:
        """The client's roots, asked for only when a path argument lies outside the --allow folders."""
        paths = [
            value
            for spec in tool.inputs
            if spec.kind == "image" and isinstance(value := arguments.get(spec.name), str) and is_path_like(value)
        ]
        if all(self.static_roots.covers(value) for value in paths):
            return []
        capabilities = ctx.session.client_capabilities
        if capabilities is None or capabilities.roots is None:
            return []
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            # 2026-07-28: the server asks in its result and the client retries with the answer.
            answer = (params.input_responses or {}).get("roots")
            if isinstance(answer, types.ListRootsResult):
                return _root_paths(answer)
            return types.InputRequiredResult(input_requests={"roots": types.ListRootsRequest()})
        try:
            with warnings.catch_warnings(), anyio.fail_after(10):
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                return _root_paths(await ctx.session.list_roots())
        except Exception:  # a client that cannot answer simply offers no roots
            return []

    async def _in_worker(self, workspace: Workspace, work: Callable[[], T], progress: Progress) -> T:
        """Run `work` in a thread; a cancelled request sets the session's cancel flag and waits for the thread."""
        finished = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = work()
            except BaseException as exc:  # handed back to the event loop below
                box["error"] = exc
            finally:
                finished.set()

        try:
            await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            progress.cancelled.set()
            progress.stop()
            workspace.session.cancel_event.set()
            # The tool stops at its next step; the next call must not start before it has.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(finished.wait)
            raise
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _call_sync(
        self,
        workspace: Workspace,
        tool: Tool,
        arguments: dict[str, Any],
        client_roots: list[Path],
        progress: Progress,
    ) -> types.CallToolResult:
        """Bind the arguments, run the tool through the client's session, build the result (worker thread)."""
        session = workspace.session
        session.fresh.clear()  # images kept from a call that failed halfway
        try:
            named = workspace.inputs.bind(type(tool), arguments, client_roots)
            with (
                session.observed(Observers(progress=progress)),
                self.workspaces.runtime.bound(session.progress_of_loading),
            ):
                step = session.run_tool(tool.name, named=named)
        except Cancelled:
            session.transcript.write("cancelled", tool=tool.name)
            return tool_error(f"{tool.name} cancelled; images made before are kept")
        except VchatError as exc:
            return tool_error(str(exc))
        if step.failure is not None:
            return tool_error(step.observation or step.text)
        return self._result(workspace, step)

    def _result(self, workspace: Workspace, step: Step) -> types.CallToolResult:
        # The observation names handles only (that is what vchat's own model needs); a client also gets paths.
        # A stateless client has no session to keep handles in: the URI is the name it chains with.
        uris = {ref.handle: image_uri(workspace.name, ref.handle) for ref in step.images}
        named = {handle: uri if workspace.stateless else handle for handle, uri in uris.items()}
        lines = [f"{ref.handle}: {ref.path}" for ref in step.images]
        if workspace.stateless:
            lines = [f"{ref.handle}: {ref.path} (name it {named[ref.handle]} in later calls)" for ref in step.images]
        text = "\n".join([step.observation or "", *lines])
        content: list[types.ContentBlock] = [types.TextContent(text=text)]
        images: list[dict[str, Any]] = []
        fresh = workspace.session.fresh
        for ref in step.images:
            uri = image_uri(workspace.name, ref.handle)
            if self.options.preview_size > 0:
                source = fresh.pop(ref.handle, None) or ref.path
                data, mime = encode_preview(source, self.options.preview_size, self.options.preview_format)
                content.append(types.ImageContent(data=base64.b64encode(data).decode("ascii"), mime_type=mime))
            content.append(
                types.ResourceLink(
                    name=ref.handle,
                    title=f"{ref.handle} ({ref.width}x{ref.height}, from {ref.tool})",
                    uri=uri,
                    description=f"full-size PNG at {ref.path}",
                    mime_type="image/png",
                    size=ref.path.stat().st_size,
                )
            )
            images.append(
                {
                    "handle": named[ref.handle],
                    "path": str(ref.path),
                    "uri": uri,
                    "width": ref.width,
                    "height": ref.height,
                    "tool": ref.tool,
                    "parents": list(ref.parents),
                }
            )
        structured = {"text": text, "images": images, "degraded": step.degraded}
        return types.CallToolResult(content=content, structured_content=structured)
