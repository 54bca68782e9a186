"""A small MCP server written with the official SDK, started by the MCP client tests as an external server.

    python tests/mcp_test_server.py [--marker FILE]

Its tools: `invert` (an image in as a data: URI, an image out as image content), `shout` (text),
`refuse` (an error result), `slow` (reports progress, then sleeps until cancelled; writes the marker
file when the cancellation reaches it), `crash` (the process exits mid-call), `path_size` (an image
in as a path the server reads), `blob` (an image in as image content, an object field), `header`
(one HTTP request header, over HTTP).
"""

from __future__ import annotations

import argparse
import base64
import io
import os
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from PIL import Image as PILImage
from PIL import ImageOps
from pydantic import Field

server = MCPServer("test-tools")
MARKER: list[Path] = []


def _decode_data_uri(uri: str) -> PILImage.Image:
    head, _, data = uri.partition(",")
    if not head.startswith("data:image/") or ";base64" not in head:
        raise ValueError(f"not an image data: URI: {uri[:40]}")
    return PILImage.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def _png(image: PILImage.Image) -> Image:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return Image(data=buffer.getvalue(), format="png")


@server.tool()
def invert(
    image: Annotated[str, Field(description="the input image as a data: URI (base64 PNG or JPEG)")],
    strength: Annotated[int, Field(description="how much to invert", ge=0, le=100)] = 100,
) -> Image:
    """Invert the colours of an image. Returns the inverted image."""
    return _png(ImageOps.invert(_decode_data_uri(image)))


@server.tool()
def shout(text: str) -> str:
    """Repeat a text in capitals, many times (a long text result)."""
    return "\n".join(f"{i}: {text.upper()}" for i in range(200))


@server.tool()
def refuse(reason: str = "no") -> str:
    """Always fail with the given reason."""
    raise ValueError(f"refused: {reason}")


@server.tool()
async def slow(ctx: Context, seconds: float = 60.0) -> str:
    """Take a long time, reporting progress; cancel it."""
    try:
        for step in range(1, 1001):
            await ctx.report_progress(step, 1000, f"step {step}")
            await anyio.sleep(seconds / 1000)
    except anyio.get_cancelled_exc_class():
        if MARKER:
            MARKER[0].write_text("cancelled")
        raise
    return "done"


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    os._exit(3)


@server.tool()
def path_size(image_path: Annotated[str, Field(description="path of an image file to read")]) -> str:
    """Read an image file by path and say its size."""
    with PILImage.open(image_path) as image:
        return f"{image.width}x{image.height}"


@server.tool()
def blob(picture: dict[str, Any]) -> str:
    """Read an image given as MCP image content ({type: image, data, mimeType}) and say its size."""
    with PILImage.open(io.BytesIO(base64.b64decode(picture["data"]))) as image:
        return f"{picture['mimeType']} {image.width}x{image.height}"


@server.tool()
def header(ctx: Context, name: str) -> str:
    """Say the value of one HTTP request header (over HTTP)."""
    return (ctx.headers or {}).get(name.lower(), "(none)")


def main() -> None:
    """Serve over stdio, or over streamable HTTP with --port."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker", type=Path)
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.marker:
        MARKER.append(args.marker)
    if args.port:
        server.run("streamable-http", host="127.0.0.1", port=args.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
