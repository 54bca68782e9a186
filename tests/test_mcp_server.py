"""`vchat mcp` in a real subprocess, driven by the official MCP client over stdio and over streamable HTTP."""

from __future__ import annotations

import base64
import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.context import ClientRequestContext
from mcp_types import CallToolResult, ListRootsResult, Root
from PIL import Image
from tests import gen_fixtures as gf
from tests.helpers import write_photo

from vchat.images import read_png_record
from vchat.tools.registry import OFFERED
from vchat.transcript import read_records

KINDS = {"image": "string", "text": "string", "choice": "string", "int": "integer", "float": "number"}
KINDS["bool"] = "boolean"


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    write_photo(allowed, width=96, height=64)
    secret = write_photo(outside, "secret.png")
    (allowed / "escape.png").symlink_to(secret)
    return {"allowed": allowed, "outside": outside, "out": tmp_path / "out", "secret": secret}


def _env(tmp_path: Path) -> dict[str, str]:
    return gf.env_for_subprocess({"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_DATA_HOME": str(tmp_path / "data")})


def _stdio(tmp_path: Path, folders: dict[str, Path], *extra: str) -> StdioServerParameters:
    args = ["-m", "vchat", "mcp", "--allow", str(folders["allowed"]), "--out", str(folders["out"]), *extra]
    return StdioServerParameters(command=sys.executable, args=args, env=_env(tmp_path), cwd=str(folders["allowed"]))


def _text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def check_schemas(tools: list[Any]) -> None:
    """The tools are listed as the prompt offers them (families included), each schema as its Field specs say."""
    listed = {tool.name: tool for tool in tools}
    assert list(listed) == [cls.name for cls in OFFERED]
    assert {"detect_map", "transform", "generate_image"} <= set(listed) and "canny_edges" not in listed
    for cls in OFFERED:
        schema = listed[cls.name].input_schema
        assert listed[cls.name].description == cls.description
        assert schema.get("required", []) == [f.name for f in cls.inputs if f.required]
        assert list(schema["properties"]) == [f.name for f in cls.inputs]
        for spec in cls.inputs:
            prop = schema["properties"][spec.name]
            assert prop["type"] == KINDS[spec.kind], (cls.name, spec.name)
            assert spec.description in prop["description"]
            if spec.kind == "image":
                assert "a file path under the folders the server allows" in prop["description"]
            assert prop.get("enum") == (list(spec.choices) if spec.kind == "choice" else None)
            assert prop.get("minimum") == spec.minimum and prop.get("maximum") == spec.maximum
            # A member-only field of a family has no default of its own (None): the schema shows none.
            expected = "NONE" if spec.required or spec.default is None else spec.default
            assert prop.get("default", "NONE") == expected


async def check_calls(client: Client, folders: dict[str, Path]) -> None:
    """A model-free tool on an allowed file, a chained call on its handle, and the refusals."""
    first = await client.call_tool("detect_map", {"image": "photo.png", "kind": "canny", "low": 40, "high": 120})
    assert not first.is_error, _text(first)
    kinds = [block.type for block in first.content]
    assert kinds == ["text", "image", "resource_link"]
    preview = first.content[1]
    assert preview.mime_type == "image/png"  # an edge map: PNG keeps it crisp
    assert Image.open(io.BytesIO(base64.b64decode(preview.data))).size == (96, 64)
    made = first.structured_content["images"][0]
    assert made["handle"] == "img2" and made["parents"] == ["img1"] and made["tool"] == "canny_edges"
    assert first.content[2].uri == made["uri"] and f"img2: {made['path']}" in _text(first)

    second = await client.call_tool("transform", {"image": made["handle"], "op": "rotate", "degrees": 90})
    assert not second.is_error, _text(second)
    rotated = second.structured_content["images"][0]
    assert rotated["parents"] == ["img2"] and (rotated["width"], rotated["height"]) == (64, 96)
    record = read_png_record(Path(rotated["path"]))
    assert record is not None and record["tool"] == "rotate_image" and record["lineage"] == ["img2", "img1"]
    assert Path(rotated["path"]).parent.parent == folders["out"]

    full = await client.read_resource(rotated["uri"])
    assert Image.open(io.BytesIO(base64.b64decode(full.contents[0].blob))).size == (64, 96)

    refusals = {
        str(folders["secret"]): "outside the allowed folders",
        "escape.png": "is a link to",
        "img42": "unknown image handle 'img42'",
        "data:image/png;base64,!!": "invalid base64",
    }
    for value, message in refusals.items():
        refused = await client.call_tool("transform", {"image": value, "op": "flip"})
        assert refused.is_error and message in _text(refused), _text(refused)
        assert "\n" not in _text(refused)
    bad = await client.call_tool("detect_map", {"image": "img1", "kind": "canny", "low": 300, "high": 100})
    assert bad.is_error and _text(bad) == "detect_map failed: low threshold (300) must not exceed high threshold (100)"
    out_of_range = await client.call_tool("detect_map", {"image": "img1", "kind": "canny", "low": 5000})
    assert out_of_range.is_error and "at most 1000" in _text(out_of_range)
    # Old capability names stay callable, as they do in the prompt.
    alias = await client.call_tool("flip_image", {"image": "img1"})
    assert not alias.is_error and alias.structured_content["images"][0]["tool"] == "flip_image"


def test_stdio_tools_schemas_calls_chain_and_refusals(tmp_path: Path, folders: dict[str, Path]) -> None:
    async def main() -> None:
        async with Client(_stdio(tmp_path, folders)) as client:
            check_schemas((await client.list_tools()).tools)
            await check_calls(client, folders)
            # The client's roots reach a folder --allow did not (2026-07-28: asked for in the call's result).
            assert (await client.call_tool("transform", {"image": str(folders["secret"]), "op": "flip"})).is_error

        async def roots(ctx: ClientRequestContext) -> ListRootsResult:
            return ListRootsResult(roots=[Root(uri=folders["outside"].as_uri(), name="outside")])

        async with Client(_stdio(tmp_path, folders), list_roots_callback=roots) as client:
            assert client.protocol_version == "2026-07-28"
            result = await client.call_tool("transform", {"image": str(folders["secret"]), "op": "flip"})
            assert not result.is_error, _text(result)

    anyio.run(main)
    # The session folder is a normal vchat session: `vchat images` lists its lineage.
    listing = subprocess.run(
        [sys.executable, "-m", "vchat", "images", "--out", str(folders["out"])],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert "img1" in listing.stdout and "flip_image" in listing.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path, folders: dict[str, Path]) -> Iterator[str]:
    port = _free_port()
    args = ["mcp", "--http", str(port), "--allow", str(folders["allowed"]), "--out", str(folders["out"])]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vchat", *args],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"on http://127.0.0.1:{port}/mcp" in err and "Traceback" not in err, err


def test_http_calls_and_a_handshake_client_with_roots(http_server: str, folders: dict[str, Path]) -> None:
    async def roots(ctx: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=folders["outside"].as_uri())])

    async def main() -> None:
        async with Client(http_server) as client:
            assert client.protocol_version == "2026-07-28"
            check_schemas((await client.list_tools()).tools)
            await check_calls(client, folders)
        async with Client(http_server, mode="legacy", list_roots_callback=roots) as client:
            assert client.protocol_version == "2025-11-25"
            # A handshake-era client is asked for its roots with roots/list in the middle of the call.
            result = await client.call_tool("transform", {"image": str(folders["secret"]), "op": "grayscale"})
            assert not result.is_error, _text(result)

    anyio.run(main)


def test_diffusion_reports_progress_is_cancelled_and_records_lineage(tmp_path: Path, folders: dict[str, Path]) -> None:
    """generate_image on the tiny zoo model: loading and denoising progress, a cancel mid-run, then a full run."""
    progress: list[tuple[float, float | None, str | None]] = []

    async def main() -> None:
        async with Client(_stdio(tmp_path, folders)) as client:
            with anyio.CancelScope() as scope:

                async def on_progress(value: float, total: float | None, message: str | None) -> None:
                    progress.append((value, total, message))
                    if message and message.startswith("denoising"):
                        scope.cancel()

                slow = {"prompt": "a red car", "steps": 150, "width": 64, "height": 64}
                await client.call_tool("generate_image", slow, progress_callback=on_progress)
            assert scope.cancelled_caught
            done = await client.call_tool(
                "generate_image", {"prompt": "a glass house", "steps": 2, "seed": 11, "width": 64, "height": 64}
            )
            assert not done.is_error, _text(done)
            made = done.structured_content["images"][0]
            assert made["handle"] == "img1"  # the cancelled run made nothing
            record = read_png_record(Path(made["path"]))
            assert record is not None and record["tool"] == "generate_image" and record["seed"] == 11
            assert record["params"]["prompt"] == "a glass house"

    anyio.run(main)
    messages = [m or "" for _, _, m in progress]
    assert any(m.startswith("loading") for m in messages) and any(m.startswith("denoising") for m in messages)
    values = [v for v, _, _ in progress]
    assert values == sorted(set(values))
    transcript, _ = read_records(next(folders["out"].glob("*/session.jsonl")))
    assert [r["tool"] for r in transcript if r["type"] == "cancelled"] == ["generate_image"]
    assert len(list(folders["out"].glob("*/*.png"))) == 1 and not list(folders["out"].glob("*/*.tmp"))
