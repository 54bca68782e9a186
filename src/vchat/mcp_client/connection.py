"""One external MCP server: started lazily on a background event loop, called from vchat's synchronous code."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

import anyio
from anyio.from_thread import BlockingPortal

from vchat.errors import Cancelled, ToolError, VchatError

if TYPE_CHECKING:
    import mcp_types as types
    from mcp import Client

    from vchat.mcp_config import McpServer

# The SDK's error code for a transport that closed under a pending request (mcp_types.CONNECTION_CLOSED).
CONNECTION_CLOSED = -32000
# How often a waiting call looks at the session's cancel flag and forwards progress (seconds).
POLL = 0.05


class ServerFailed(VchatError):
    """An external MCP server could not be started, or stopped while vchat needed it."""


class EventLoop:
    """One daemon thread running an anyio event loop, shared by every server of a session.

    A daemon thread, so a process that forgets to close its session still exits (its stdio servers then see
    their input end and stop).
    """

    def __init__(self) -> None:
        self.portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None
        self._done: anyio.Event | None = None
        self._lock = threading.Lock()

    def get(self) -> BlockingPortal:
        """The portal, its thread started on first use."""
        with self._lock:
            if self.portal is None:
                ready: queue.Queue[BlockingPortal] = queue.Queue()

                async def main() -> None:
                    self._done = anyio.Event()
                    async with BlockingPortal() as portal:
                        ready.put(portal)
                        await self._done.wait()
                        await portal.stop(cancel_remaining=True)  # whatever is left (an abandoned call) ends here

                self._thread = threading.Thread(target=anyio.run, args=(main,), name="vchat-mcp-client", daemon=True)
                self._thread.start()
                self.portal = ready.get(timeout=30)
            return self.portal

    def close(self) -> None:
        """Stop the loop (its servers must be stopped first)."""
        with self._lock:
            portal, thread = self.portal, self._thread
            self.portal = self._thread = None
        if portal is not None and self._done is not None:
            with contextlib.suppress(Exception):
                portal.call(self._done.set)
        if thread is not None:
            thread.join(timeout=10)


def _log_end(log: IO[str] | None) -> int:
    """Where the server's stderr file ends now."""
    try:
        return log.seek(0, os.SEEK_END) if log is not None else 0
    except (OSError, ValueError):
        return 0


def _last_line(log: IO[str] | None, since: int = 0) -> str:
    """The last line a server wrote on stderr after `since`: usually the reason it stopped."""
    if log is None:
        return ""
    try:
        log.flush()
        log.seek(since)
        lines = [line.strip() for line in log.read()[-4000:].splitlines() if line.strip()]
    except (OSError, ValueError):
        return ""
    return lines[-1][:200] if lines else ""


def _why(exc: BaseException) -> str:
    """One line for an exception, looking inside exception groups (anyio task groups wrap what failed)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}"


class Connection:
    """A server's client, entered in a task of its own on the event loop and kept open until `stop`."""

    def __init__(self, spec: McpServer, loop: EventLoop) -> None:
        self.spec = spec
        self.loop = loop
        self.client: Client | None = None
        self.tools: list[types.Tool] | None = None  # the server's listing, from its first start
        self.failure: str | None = None  # why the last start failed
        self._stop: anyio.Event | None = None
        self._task: concurrent.futures.Future[Any] | None = None
        self._log: IO[str] | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """True while the client is connected and its task alive."""
        return self.client is not None and self._task is not None and not self._task.done()

    def describe(self) -> str:
        """What the server is, for listings: its command or URL."""
        return self.spec.url or " ".join(self.spec.command)

    # -- starting and stopping -------------------------------------------------------------------
    def start(self) -> list[types.Tool]:
        """Start the server (when not running) and return its tools; ServerFailed in one line when it cannot."""
        with self._lock:
            if self.running:
                assert self.tools is not None
                return self.tools
            self._reset()
            portal = self.loop.get()
            try:
                self._task, listing = portal.start_task(self._serve)
            except Exception as exc:
                detail = _last_line(self._log) or _why(exc)
                self.failure = f"MCP server {self.spec.name} did not start: {detail}"
                self._reset()
                raise ServerFailed(self.failure) from None
            self.failure = None
            self.tools = listing
            return listing

    async def _serve(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Enter the client, list its tools, report them, then hold the connection open until asked to stop."""
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters, stdio_client

        self._stop = anyio.Event()
        http: Any = None
        if self.spec.url is not None:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            # Our own HTTP client: the headers (a token, say), and a read timeout no shorter than a call's limit.
            headers = {key: os.path.expandvars(value) for key, value in self.spec.headers.items()}
            timeout = httpx2.Timeout(30.0, read=max(300.0, self.spec.timeout))
            http = httpx2.AsyncClient(headers=headers, timeout=timeout)
            target: Any = streamable_http_client(self.spec.url, http_client=http)
        else:
            # The server's stderr goes to a file, not the terminal: its last line explains a failed start.
            self._log = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115 (closed by _reset)
            params = StdioServerParameters(
                command=self.spec.command[0], args=self.spec.command[1:], env=self.spec.env or None, cwd=os.getcwd()
            )
            target = stdio_client(params, errlog=self._log)
        client = Client(target, client_info=_client_info())
        # One scope around the client's whole life (its task groups must nest inside it): a deadline while it
        # starts and lists its tools, none once it is up.
        with anyio.CancelScope(deadline=anyio.current_time() + self.spec.start_timeout) as scope:
            try:
                async with contextlib.AsyncExitStack() as stack:
                    if http is not None:
                        await stack.enter_async_context(http)
                    await stack.enter_async_context(client)
                    listing = await _all_tools(client)
                    scope.deadline = float("inf")
                    self.client = client
                    task_status.started(listing)
                    await self._stop.wait()
            finally:
                self.client = None
        if scope.cancelled_caught:
            raise TimeoutError(f"no answer within {self.spec.start_timeout:g} s")

    def stop(self) -> None:
        """Stop the server (the client closes its transport; a stdio server's process ends)."""
        with self._lock:
            portal, stop, task = self.loop.portal, self._stop, self._task
            if portal is not None and stop is not None and task is not None and not task.done():
                try:
                    portal.call(stop.set)
                    task.result(timeout=10)
                except Exception:  # a server that fails while stopping is stopped all the same
                    pass
            self._reset()

    def _reset(self) -> None:
        self.client = None
        self._task = None
        self._stop = None
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- calling -----------------------------------------------------------------------------------
    def call(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        on_progress: Callable[[float, float | None, str | None], None] | None = None,
        check_cancelled: Callable[[], None] = lambda: None,
    ) -> types.CallToolResult:
        """Call one tool under the server's time limit; Ctrl-C (the session's cancel flag) cancels it over MCP."""
        self.start()
        client, portal = self.client, self.loop.get()
        assert client is not None
        latest: list[tuple[float, float | None, str | None]] = []
        logged = _log_end(self._log)

        async def on_notice(progress: float, total: float | None, message: str | None) -> None:
            latest.append((progress, total, message))

        async def run() -> types.CallToolResult:
            with anyio.fail_after(self.spec.timeout):
                return await client.call_tool(name, arguments, progress_callback=on_notice)

        future = portal.start_task_soon(run)
        try:
            while True:
                # (not future.result(timeout=...): its TimeoutError is the same class as the call's own time limit)
                if concurrent.futures.wait([future], timeout=POLL).done:
                    return future.result()
                if latest and on_progress is not None:
                    on_progress(*latest[-1])
                    latest.clear()
                if not self.running:
                    raise self._crashed(logged)
                check_cancelled()
        except TimeoutError:
            raise ToolError(f"no answer from MCP server {self.spec.name} within {self.spec.timeout:g} s") from None
        except (Cancelled, KeyboardInterrupt):
            # Cancelling the task makes the SDK send notifications/cancelled to the server.
            future.cancel()
            _settle(future)
            raise
        except ServerFailed:
            future.cancel()
            raise
        except concurrent.futures.CancelledError:
            raise self._crashed(logged) from None
        except Exception as exc:
            if not self.running or getattr(exc, "code", None) == CONNECTION_CLOSED:
                raise self._crashed(logged) from None
            raise ToolError(f"MCP server {self.spec.name}: {_why(exc)}") from None

    def read_resource(self, uri: str) -> types.ReadResourceResult:
        """Read one resource the server linked to (a full-size image) under the server's time limit."""
        client, portal = self.client, self.loop.get()
        if client is None:
            raise ServerFailed(f"MCP server {self.spec.name} is not running")

        async def read() -> types.ReadResourceResult:
            with anyio.fail_after(self.spec.timeout):
                return await client.read_resource(uri)

        return portal.call(read)

    def _crashed(self, logged: int) -> ServerFailed:
        """The server stopped during a call: one line, and the next call starts it again."""
        detail = _last_line(self._log, logged)
        task = self._task
        if not detail and task is not None and task.done() and not task.cancelled() and task.exception():
            detail = _why(task.exception())  # type: ignore[arg-type]
        self._reset()
        return ServerFailed(f"MCP server {self.spec.name} stopped during the call{': ' + detail if detail else ''}")


def _settle(future: concurrent.futures.Future[Any], seconds: float = 2.0) -> None:
    """Wait a moment for a cancelled call to unwind (its cancellation notice is sent meanwhile)."""
    deadline = time.monotonic() + seconds
    while not future.done() and time.monotonic() < deadline:
        time.sleep(POLL / 5)


async def _all_tools(client: Client) -> list[types.Tool]:
    """Every tool the server lists, page by page."""
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _client_info() -> Any:
    from mcp_types import Implementation

    from vchat import __version__

    return Implementation(name="vchat", version=__version__)
