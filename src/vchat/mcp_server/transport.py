"""Serving a VchatServer over stdio (what desktop clients launch) or streamable HTTP (uvicorn)."""

from __future__ import annotations

import socket
from typing import Any

import anyio

from vchat.errors import UsageError, VchatError
from vchat.mcp_server.rebinding import transport_security
from vchat.mcp_server.server import VchatServer

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parse_listen(text: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[IPv6]:PORT` as (host, port); the host defaults to loopback."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text.strip()
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--http {text!r}: expected [HOST:]PORT, e.g. --http 8000 or --http 127.0.0.1:8000")
    return host, int(port)


async def _stdio(app: VchatServer) -> None:
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage

    from vchat.mcp_server.clean import repaired_message

    # The SDK claims fd 1 for the protocol and points it at stderr for everyone else, so a stray print
    # from a library cannot corrupt the stream.
    async with stdio_server() as (read, write):
        # The SDK drops a line it cannot parse without a reply; one that failed only for a lone surrogate
        # (legal in JSON's escapes, refused by its strict parser) is repaired and served, so its caller hears back.
        send, receive = anyio.create_memory_object_stream[Any](0)

        async def forward() -> None:
            async with send:
                async for item in read:
                    repaired = repaired_message(item) if isinstance(item, Exception) else None
                    await send.send(SessionMessage(repaired) if repaired is not None else item)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(forward)
            await app.server.run(receive, write, app.server.create_initialization_options())
            tasks.cancel_scope.cancel()


async def _http(app: VchatServer, host: str, port: int, hosts: list[str]) -> None:
    import uvicorn

    # Host and Origin checked on every address, not only where the SDK would (127.0.0.1, localhost, ::1).
    asgi = app.server.streamable_http_app(host=host, transport_security=transport_security(host, hosts))
    config = uvicorn.Config(asgi, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    await server.serve()
    if not server.started:
        raise VchatError(f"could not listen on {host}:{port} (in use, or not an address of this machine)")


def check_listen(host: str, port: int) -> None:
    """Fail with one line before serving when the address cannot be bound (in use, not this machine's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise VchatError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(app: VchatServer, http: tuple[str, int] | None = None, hosts: list[str] | None = None) -> None:
    """Serve until the client disconnects (stdio) or the process is interrupted (HTTP)."""
    if http is None:
        anyio.run(_stdio, app)
    else:
        anyio.run(_http, app, *http, list(hosts or []))
