"""The MCP server: vchat's tools over one vchat Session, each call run in a worker thread with progress and cancel."""

from __future__ import annotations

import base64
import contextlib
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlparse

import anyio
import anyio.from_thread
import anyio.to_thread
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from vchat import __version__
from vchat.errors import Cancelled, VchatError
from vchat.images import ImageRef
from vchat.mcp_server.inputs import ImageInputs, Roots, handle_of_uri, image_uri, is_path_like
from vchat.mcp_server.preview import encode_preview
from vchat.mcp_server.schema import OUTPUT_SCHEMA, input_schema
from vchat.mcp_server.served import ServedSession
from vchat.tools.base import offered

if TYPE_CHECKING:
    from vchat.agent import Step
    from vchat.session import Session
    from vchat.tools.base import Tool

T = TypeVar("T")


@dataclass
class ServerOptions:
    """What `vchat mcp` was told: readable folders and how previews are made."""

    allow: list[Path] = field(default_factory=list)
    preview_size: int = 512  # long side of the preview in pixels; 0: no image content, links only
    preview_format: str = "auto"  # auto | png | jpeg


def tool_error(message: str) -> types.CallToolResult:
    """A failed call as the client's model should see it: one line, flagged as an error."""
    line = " ".join(message.split()) or "the tool failed"
    return types.CallToolResult(content=[types.TextContent(text=line)], is_error=True)


def _failed(step: Step, tool: str) -> bool:
    # run_tool turns a tool's own failure into an observation: "<tool> failed: <reason>".
    return not step.images and (step.observation or "").startswith(f"{tool} failed:")


class Progress:
    """Forwards a tool's (done, total, label) reports from the worker thread as MCP progress notifications.

    Loading, then denoising, each count from 1: the values sent are offset by the phases
    before, so the client sees one rising number as the protocol requires.
    """

    def __init__(self, notify: Callable[[float, float, str], Any], cancelled: threading.Event, session: Session):
        self.notify = notify
        self.cancelled = cancelled
        self.session = session
        self.phase = ""
        self.done = 0
        self.total = 0
        self.offset = 0
        self.sent = -1

    def __call__(self, done: int, total: int, label: str) -> None:
        """Called by the session in the worker thread."""
        if self.cancelled.is_set():
            # A cancel that came before Session.run_tool cleared the flag: set it again.
            self.session.cancel_event.set()
        phase = label.split(" ", 1)[0]
        if phase != self.phase or done < self.done:
            self.offset += self.total
            self.phase = phase
        self.done, self.total = done, max(total, done)
        value = self.offset + done
        if value <= self.sent:
            return
        self.sent = value
        message = f"{label} ({done}/{total})"
        with contextlib.suppress(Exception):  # a client gone mid-call must not break the tool
            anyio.from_thread.run(self.notify, float(value), float(self.offset + self.total), message)


def _root_paths(result: types.ListRootsResult) -> list[Path]:
    return [Path(unquote(urlparse(str(r.uri)).path)) for r in result.roots if str(r.uri).startswith("file://")]


class VchatServer:
    """One MCP server over one vchat Session; tools run one at a time (they share the models' memory)."""

    def __init__(self, session: Session, options: ServerOptions) -> None:
        self.session = session
        self.options = options
        self.static_roots = Roots(list(options.allow))
        self.inputs = ImageInputs(session, Roots(list(options.allow)))
        # Every tool is callable (old capability names are aliases of their family's member) ...
        self.tools: dict[str, Tool] = dict(session.tools)
        # ... and the list shows them as the prompt offers them: families, and the tools outside them.
        self.listed: list[Tool] = offered(session.tools.values())
        self.published: dict[str, ImageRef] = {}
        self._lock = anyio.Lock()
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
            "handle from an earlier call (img3), a file path under the allowed folders, or a data: URI. Every result "
            "gives a preview, the new image's handle to chain calls with, its path and a resource link to the "
            f"full-size PNG. Allowed folders: {roots}."
        )

    def tool_list(self) -> list[types.Tool]:
        """Every vchat tool as an MCP tool, its input schema rendered from its field specs."""
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

    # -- handlers ------------------------------------------------------------------------------
    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tool_list())

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        tool = self.tools.get(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}; tools/list names them")
        arguments = dict(params.arguments or {})
        try:
            roots = await self._client_roots(ctx, params, tool, arguments)
            if isinstance(roots, types.InputRequiredResult):
                return roots
            cancelled = threading.Event()
            progress = Progress(ctx.session.report_progress, cancelled, self.session)
            async with self._lock:
                result = await self._in_worker(lambda: self._call_sync(tool, arguments, roots, progress), cancelled)
                for ref in self.session.store:
                    self.published[ref.handle] = ref
            return result
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:  # never a crash of the server: the client hears one line
            detail = str(exc).splitlines()[0] if str(exc) else ""
            return tool_error(f"{tool.name} failed: {type(exc).__name__}{': ' + detail if detail else ''}")

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        resources = [
            types.Resource(
                name=ref.handle,
                uri=image_uri(self.session.id, ref.handle),
                description=ref.describe(),
                mime_type="image/png",
            )
            for ref in list(self.published.values())
        ]
        return types.ListResourcesResult(resources=resources)

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            handle = handle_of_uri(uri, self.session.id)
        except VchatError as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        ref = self.published.get(handle or "")
        if ref is None:
            raise MCPError(types.INVALID_PARAMS, f"no image {uri} in this server session")
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

    async def _in_worker(self, work: Callable[[], T], cancelled: threading.Event) -> T:
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
            cancelled.set()
            self.session.cancel_event.set()
            # The tool stops at its next step; the next call must not start before it has.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(finished.wait)
            raise
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _call_sync(
        self, tool: Tool, arguments: dict[str, Any], client_roots: list[Path], progress: Progress
    ) -> types.CallToolResult:
        """Bind the arguments, run the tool through the session, build the result (worker thread)."""
        session = self.session
        if isinstance(session, ServedSession):
            session.fresh.clear()  # images kept from a call that failed halfway
        session.on_progress = progress
        try:
            named = self.inputs.bind(type(tool), arguments, client_roots)
            step = session.run_tool(tool.name, named=named)
        except Cancelled:
            session.transcript.write("cancelled", tool=tool.name)
            return tool_error(f"{tool.name} cancelled; images made before are kept")
        except VchatError as exc:
            return tool_error(str(exc))
        finally:
            session.on_progress = None
        if _failed(step, tool.name):
            return tool_error(step.observation or "")
        return self._result(step)

    def _result(self, step: Step) -> types.CallToolResult:
        # The observation names handles only (that is what vchat's own model needs); a client also gets paths.
        text = "\n".join([step.observation or "", *(f"{ref.handle}: {ref.path}" for ref in step.images)])
        content: list[types.ContentBlock] = [types.TextContent(text=text)]
        images: list[dict[str, Any]] = []
        fresh = self.session.fresh if isinstance(self.session, ServedSession) else {}
        for ref in step.images:
            uri = image_uri(self.session.id, ref.handle)
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
                    "handle": ref.handle,
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
