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
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ListRootsResult, Root
from PIL import Image
from tests import gen_fixtures as gf
from tests.helpers import write_photo

from vchat.store.refs import read_png_record
from vchat.store.transcript import LOCK_NAME, read_records
from vchat.tools.registry import OFFERED

KINDS = {"image": "string", "text": "string", "choice": "string", "int": "integer", "float": "number"}
KINDS["bool"] = "boolean"
KINDS["images"] = "array"  # a list of image names (instruct_edit's references)


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
            low, high = ("minItems", "maxItems") if spec.kind == "images" else ("minimum", "maximum")
            assert prop.get(low) == spec.minimum and prop.get(high) == spec.maximum
            # A member-only field of a family has no default of its own (None): the schema shows none.
            expected = "NONE" if spec.required or spec.default is None else spec.default
            assert prop.get("default", "NONE") == expected


async def check_calls(client: Client, folders: dict[str, Path], stateless: bool = False) -> None:
    """A model-free tool on an allowed file, a chained call on its handle, and the refusals.

    A stateless client (HTTP at 2026-07-28) is given each image's URI as its handle.
    """
    first = await client.call_tool("detect_map", {"image": "photo.png", "kind": "canny", "low": 40, "high": 120})
    assert not first.is_error, _text(first)
    kinds = [block.type for block in first.content]
    assert kinds == ["text", "image", "resource_link"]
    preview = first.content[1]
    assert preview.mime_type == "image/png"  # an edge map: PNG keeps it crisp
    assert Image.open(io.BytesIO(base64.b64decode(preview.data))).size == (96, 64)
    made = first.structured_content["images"][0]
    assert made["handle"] == (made["uri"] if stateless else "img2") and made["uri"].endswith("/img2")
    assert made["parents"] == ["img1"] and made["tool"] == "canny_edges"
    assert first.content[2].uri == made["uri"] and f"img2: {made['path']}" in _text(first)
    img1 = made["uri"].removesuffix("img2") + "img1" if stateless else "img1"

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
        "img42": "no session to keep bare handles in" if stateless else "unknown image handle 'img42'",
        "data:image/png;base64,!!": "invalid base64",
    }
    for value, message in refusals.items():
        refused = await client.call_tool("transform", {"image": value, "op": "flip"})
        assert refused.is_error and message in _text(refused), _text(refused)
        assert "\n" not in _text(refused)
    bad = await client.call_tool("detect_map", {"image": img1, "kind": "canny", "low": 300, "high": 100})
    assert bad.is_error and _text(bad) == "detect_map failed: low threshold (300) must not exceed high threshold (100)"
    out_of_range = await client.call_tool("detect_map", {"image": img1, "kind": "canny", "low": 5000})
    assert out_of_range.is_error and "at most 1000" in _text(out_of_range)
    # Old capability names stay callable, as they do in the prompt.
    alias = await client.call_tool("flip_image", {"image": img1})
    assert not alias.is_error and alias.structured_content["images"][0]["tool"] == "flip_image"
    # Every call of the chain went into one session folder.
    assert Path(alias.structured_content["images"][0]["path"]).parent == Path(made["path"]).parent


@pytest.mark.slow
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


@pytest.mark.slow
def test_http_calls_and_a_handshake_client_with_roots(http_server: str, folders: dict[str, Path]) -> None:
    async def roots(ctx: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=folders["outside"].as_uri())])

    async def main() -> None:
        async with Client(http_server) as client:
            assert client.protocol_version == "2026-07-28"
            check_schemas((await client.list_tools()).tools)
            await check_calls(client, folders, stateless=True)
        async with Client(http_server, mode="legacy") as client:
            assert client.protocol_version == "2025-11-25"
            await check_calls(client, folders)  # a protocol session: bare handles, as over stdio
        async with Client(http_server, mode="legacy", list_roots_callback=roots) as client:
            assert client.protocol_version == "2025-11-25"
            # A handshake-era client is asked for its roots with roots/list in the middle of the call.
            result = await client.call_tool("transform", {"image": str(folders["secret"]), "op": "grayscale"})
            assert not result.is_error, _text(result)

    anyio.run(main)


@pytest.mark.slow
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


async def _cancel_mid_denoising(client: Client) -> list[str]:
    """Start a long generate_image, cancel it at its first denoising step; the progress messages it sent."""
    messages: list[str] = []
    values: list[float] = []
    with anyio.CancelScope() as scope:

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            messages.append(message or "")
            values.append(value)
            if message and message.startswith("denoising"):
                scope.cancel()

        slow = {"prompt": "a red car", "steps": 150, "width": 64, "height": 64}
        await client.call_tool("generate_image", slow, progress_callback=on_progress)
    assert scope.cancelled_caught and values == sorted(set(values))
    return messages


@pytest.mark.slow
def test_http_clients_share_the_runtime_and_cancel_their_own_calls(http_server: str, folders: dict[str, Path]) -> None:
    """Over HTTP too: progress and cancel; model calls of two clients take turns on one runtime, loaded once."""
    quick = {"prompt": "a glass house", "steps": 2, "seed": 11, "width": 64, "height": 64}
    slow = {"prompt": "a red car", "steps": 150, "width": 64, "height": 64}

    async def main() -> Path:
        async with Client(http_server) as first, Client(http_server, mode="legacy") as second:
            assert any(m.startswith("loading") for m in await _cancel_mid_denoising(first))
            made = (await first.call_tool("generate_image", quick)).structured_content["images"][0]
            assert made["handle"].endswith("/img1")  # the cancelled run made nothing, and left no session
            # The second client's model call waits for the first's, which it then cancels; it loads nothing.
            heard: list[str] = []
            async with anyio.create_task_group() as group:
                denoising, long_call = anyio.Event(), anyio.CancelScope()

                async def on_first(value: float, total: float | None, message: str | None) -> None:
                    if message and message.startswith("denoising"):
                        denoising.set()

                async def run_first() -> None:
                    with long_call:
                        await first.call_tool("generate_image", slow, progress_callback=on_first)

                async def on_second(value: float, total: float | None, message: str | None) -> None:
                    heard.append(message or "")
                    if message and message.startswith("waiting"):
                        long_call.cancel()

                group.start_soon(run_first)
                await denoising.wait()
                done = await second.call_tool("generate_image", quick, progress_callback=on_second)
            assert long_call.cancelled_caught and not done.is_error, _text(done)
            assert heard[0] == "waiting: another client's call is using the models"
            assert any(m.startswith("denoising") for m in heard) and not any(m.startswith("loading") for m in heard)
            other = done.structured_content["images"][0]
            assert other["handle"] == "img1" and Path(other["path"]).parent != Path(made["path"]).parent
            assert not any(m.startswith("loading") for m in await _cancel_mid_denoising(second))
            # (One more request before leaving: a cancel notification still in flight when the client ends its
            # session makes the SDK log a traceback.)
            assert [r.name for r in (await second.list_resources()).resources] == ["img1"]
            return Path(other["path"]).parent / "session.jsonl"

    transcript = anyio.run(main)
    # The client does not wait for the cancelled call to stop; the server records it when the tool has.
    deadline = time.monotonic() + 15
    while [r["tool"] for r in read_records(transcript)[0] if r["type"] == "cancelled"] != ["generate_image"]:
        assert time.monotonic() < deadline, read_records(transcript)[0]
        time.sleep(0.2)
    # The cancelled stateless calls left no session behind: two folders, one image each.
    assert len(list(folders["out"].glob("*/*.png"))) == 2 and not list(folders["out"].glob("*/*.tmp"))
    assert len([p for p in folders["out"].iterdir() if p.is_dir()]) == 2


def _lock_free(folder: Path) -> bool:
    """True when no process holds the session folder's lock (its vchat session was closed)."""
    import fcntl

    if not (folder / LOCK_NAME).exists():  # a clean close removes the lock file
        return True
    with open(folder / LOCK_NAME, "rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


@pytest.mark.slow
def test_two_http_clients_each_have_their_own_session(http_server: str, folders: dict[str, Path]) -> None:
    """Handles, URIs and resources of one MCP client mean nothing to another; each has its own session folder."""
    flip = {"image": "photo.png", "op": "flip"}

    async def main() -> Path:
        async with Client(http_server, mode="legacy") as a, Client(http_server, mode="legacy") as b:
            made_a = (await a.call_tool("transform", flip)).structured_content["images"][0]
            assert made_a["handle"] == "img2"
            refused = await b.call_tool("transform", {"image": "img2", "op": "flip"})
            assert refused.is_error and "unknown image handle 'img2'" in _text(refused), _text(refused)
            assert "knows: none yet" in _text(refused)
            refused = await b.call_tool("transform", {"image": made_a["uri"], "op": "flip"})
            assert refused.is_error and "not an image of this client's vchat session" in _text(refused)
            with pytest.raises(MCPError, match="not an image of this client's vchat session"):
                await b.read_resource(made_a["uri"])
            made_b = (await b.call_tool("transform", {"image": "photo.png", "op": "grayscale"})).structured_content
            made_b = made_b["images"][0]
            assert made_b["handle"] == "img2" and Path(made_b["path"]).parent != Path(made_a["path"]).parent
            assert [r.uri for r in (await b.list_resources()).resources] == [
                made_b["uri"].replace("img2", "img1"),
                made_b["uri"],
            ]
            # A's own handle still means A's image.
            again = (
                await a.call_tool("transform", {"image": "img2", "op": "rotate", "degrees": 90})
            ).structured_content
            assert again["images"][0]["parents"] == ["img2"]
            assert Path(again["images"][0]["path"]).parent == Path(made_a["path"]).parent
            folder_a = Path(made_a["path"]).parent
            assert not _lock_free(folder_a)
        # Stateless clients (2026-07-28): no session to tell them apart; an image's URI, with its secret, names it.
        async with Client(http_server) as c, Client(http_server) as d:
            made_c = (await c.call_tool("transform", flip)).structured_content["images"][0]
            assert made_c["handle"] == made_c["uri"]
            refused = await d.call_tool("transform", {"image": "img2", "op": "flip"})
            assert refused.is_error and "no session to keep bare handles in" in _text(refused)
            session_id, secret = made_c["uri"].removeprefix("vchat://").split("/")[0].split(".")
            forged = made_c["uri"].replace(secret, "0" * len(secret))
            refused = await d.call_tool("transform", {"image": forged, "op": "flip"})
            assert refused.is_error and "names no image of this server" in _text(refused), _text(refused)
            with pytest.raises(MCPError):
                await d.read_resource(forged)
            chained = (
                await c.call_tool("transform", {"image": made_c["handle"], "op": "grayscale"})
            ).structured_content
            assert Path(chained["images"][0]["path"]).parent.name == session_id
            assert (await d.list_resources()).resources == []
        return folder_a

    folder_a = anyio.run(main)
    # A client that ends its protocol session has its vchat session closed (the folder's lock let go) ...
    deadline = time.monotonic() + 15
    while not _lock_free(folder_a):
        assert time.monotonic() < deadline, "the ended client's session is still open"
        time.sleep(0.2)
    # ... and refused stateless calls left no session folders behind: A's, B's, C's chain.
    assert len([p for p in folders["out"].iterdir() if p.is_dir()]) == 3


@pytest.mark.slow
def test_tools_option_serves_a_subset(tmp_path: Path, folders: dict[str, Path]) -> None:
    async def main() -> None:
        async with Client(_stdio(tmp_path, folders, "--tools", "canny_edges, transform")) as client:
            tools = (await client.list_tools()).tools
            assert [tool.name for tool in tools] == ["canny_edges", "transform"]
            assert tools[0].input_schema["required"] == ["image"]
            made = await client.call_tool("canny_edges", {"image": "photo.png"})
            assert not made.is_error and made.structured_content["images"][0]["tool"] == "canny_edges"
            assert not (await client.call_tool("flip_image", {"image": "img1"})).is_error  # a member of transform
            with pytest.raises(MCPError, match="unknown tool 'detect_map'"):
                await client.call_tool("detect_map", {"image": "img1", "kind": "depth"})

    anyio.run(main)
    for value, hint in (("cany_edges,transform", "did you mean canny_edges?"), (",", "name the tools or families")):
        run = subprocess.run(
            [sys.executable, "-m", "vchat", "mcp", "--tools", value],
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert run.returncode == 2 and hint in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
