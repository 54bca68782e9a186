"""The MCP server's pieces in-process: confined image inputs, data: URIs, schemas, previews, progress, options."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image
from tests.helpers import make_session, photo, write_photo

from vchat.cli.mcp import allowed_roots, default_roots
from vchat.errors import ImageError, ToolInputError, UnknownImageError, UnsafePathError, VchatError
from vchat.mcp_server.inputs import ImageInputs, Roots, decode_data_uri, image_uri
from vchat.mcp_server.preview import encode_preview
from vchat.mcp_server.schema import input_schema
from vchat.mcp_server.server import Progress
from vchat.mcp_server.transport import check_listen, parse_listen
from vchat.tools.maps.canny import CannyEdges
from vchat.tools.registry import OFFERED, TOOL_CLASSES


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """An allowed folder with a photo, a hidden folder, links in and out; a secret folder outside."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    photo_path = write_photo(allowed)
    write_photo(allowed / "sub", "nested.png")
    hidden = write_photo(allowed / ".ssh", "id.png")
    secret = write_photo(outside, "secret.png")
    (allowed / "escape.png").symlink_to(secret)
    (allowed / "inside-link.png").symlink_to(photo_path)
    (allowed / "loop.png").symlink_to(allowed / "loop.png")
    return {"allowed": allowed, "photo": photo_path, "hidden": hidden, "secret": secret, "root": tmp_path}


def test_paths_under_the_root_are_read_links_within_too(tree: dict[str, Path]) -> None:
    roots = Roots([tree["allowed"]])
    assert roots.confine("photo.png") == tree["photo"].resolve()  # relative to the first root
    assert roots.confine(str(tree["allowed"] / "sub" / "nested.png")).name == "nested.png"
    assert roots.confine(f"file://{tree['photo']}") == tree["photo"].resolve()
    assert roots.confine("inside-link.png") == tree["photo"].resolve()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("../outside/secret.png", "outside the allowed folders"),
        ("/etc/passwd", "outside the allowed folders"),
        ("~/.ssh/id_rsa", "outside the allowed folders"),
        ("escape.png", "is a link to"),
        (".ssh/id.png", "hidden files and folders (.ssh) are never read"),
        ("loop.png", "cannot be resolved"),
    ],
)
def test_everything_else_is_refused(tree: dict[str, Path], value: str, message: str) -> None:
    with pytest.raises(UnsafePathError, match="^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        Roots([tree["allowed"]]).confine(value)


def test_a_missing_file_under_the_root_says_so_and_nothing_leaks_outside(tree: dict[str, Path]) -> None:
    with pytest.raises(ImageError, match="no such file"):
        Roots([tree["allowed"]]).confine("nope.png")
    # Outside the roots the answer is the same whether or not the file exists.
    for name in ("secret.png", "missing.png"):
        with pytest.raises(UnsafePathError, match="outside the allowed folders"):
            Roots([tree["allowed"]]).confine(str(tree["root"] / "outside" / name))


def test_client_roots_widen_what_may_be_read(tree: dict[str, Path]) -> None:
    roots = Roots([tree["allowed"]], client=[tree["root"] / "outside"])
    assert roots.confine(str(tree["secret"])) == tree["secret"].resolve()


def test_inputs_attach_once_and_resolve_handles_uris_and_outputs(tmp_path: Path, tree: dict[str, Path]) -> None:
    session = make_session(tmp_path)
    inputs = ImageInputs(session, Roots([tree["allowed"]]))
    first = inputs.handle_for("photo.png")
    assert inputs.handle_for(str(tree["photo"])) == first  # same unchanged file: the same handle
    assert inputs.handle_for(image_uri(session.id, first)) == first
    step = session.run_tool("flip_image", named={"image": first})
    made = step.images[0]
    assert inputs.handle_for(str(made.path)) == made.handle  # an output named by its path is itself
    with pytest.raises(UnknownImageError, match="unknown image handle 'img7'; this client's session knows: img1, img2"):
        inputs.handle_for("img7")
    with pytest.raises(UnknownImageError, match="not an image of this client's vchat session"):
        inputs.handle_for("vchat://20200101-000000-0000/img1")
    with pytest.raises(UnknownImageError, match="names no image of this session"):
        inputs.handle_for(image_uri(session.id, "img9"))
    bound = inputs.bind(CannyEdges, {"image": "photo.png", "low": 10})
    assert bound == {"image": first, "low": 10}


def test_a_stateless_client_names_images_by_uri_and_may_combine_its_chains(tmp_path: Path) -> None:
    """Over HTTP at 2026-07-28 bare handles mean nothing; another chain's image (by its URI) is attached."""
    from vchat.config import Settings
    from vchat.mcp_server.workspaces import Workspaces
    from vchat.tools.registry import all_tools

    write_photo(tmp_path / "in")
    # The output folder under the allowed one, as by default (both the current folder).
    spaces = Workspaces(Settings(out_dir=tmp_path / "in" / "out"), all_tools(), [tmp_path / "in"])
    one, two = spaces.new(stateless=True), spaces.new(stateless=True)
    assert one.session.folder != two.session.folder and one.name != two.name
    made = one.session.run_tool("flip_image", named={"image": one.inputs.handle_for("photo.png")}).images[0]
    one.publish()
    found = {image_uri(one.name, made.handle): made}
    two.inputs.stateless, two.inputs.foreign = True, found.get
    with pytest.raises(UnknownImageError, match="no session to keep bare handles in"):
        two.inputs.handle_for(made.handle)
    with pytest.raises(UnknownImageError, match="names no image of this server"):
        two.inputs.handle_for(image_uri(one.session.id + ".guessed", made.handle))
    assert one.inputs.handle_for(str(made.path)) == made.handle  # its own output, by path
    with pytest.raises(UnsafePathError, match="belongs to another session of this server"):
        two.inputs.handle_for(str(made.path))
    attached = two.inputs.handle_for(image_uri(one.name, made.handle))
    assert two.inputs.handle_for(image_uri(one.name, made.handle)) == attached  # attached once
    ref = two.session.store.get(attached)
    assert ref.tool is None and ref.path.parent == two.session.folder and ref.source == image_uri(one.name, "img2")
    spaces.close_all()
    assert one.session.closed and two.session.closed


def test_data_uris(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    photo(20, 10).save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    session = make_session(tmp_path)
    handle = ImageInputs(session, Roots([])).handle_for(uri)
    ref = session.store.get(handle)
    assert (ref.width, ref.height) == (20, 10) and ref.source == f"data: URI ({len(buffer.getvalue()):,} bytes)"
    assert not list(session.folder.glob(".data-uri-*"))  # the carrier file is gone
    with pytest.raises(ToolInputError, match="type text/plain"):
        decode_data_uri("data:text/plain;base64,aGVsbG8=")
    with pytest.raises(ToolInputError, match="base64-encoded"):
        decode_data_uri("data:image/png,rawbytes")
    with pytest.raises(ToolInputError, match="invalid base64"):
        decode_data_uri("data:image/png;base64,***")
    with pytest.raises(ImageError, match=r"^data: URI: not an image file"):
        ImageInputs(session, Roots([])).handle_for("data:image/png;base64," + base64.b64encode(b"nope").decode())


@pytest.mark.parametrize("tool", dict.fromkeys((*OFFERED, *TOOL_CLASSES)), ids=lambda t: t.name)
def test_every_schema_is_json_and_follows_the_field_specs(tool: type) -> None:
    schema = json.loads(json.dumps(input_schema(tool)))
    for spec in tool.inputs:
        if spec.kind == "image":
            assert schema["properties"][spec.name]["description"].startswith(f"{spec.description}; an image: a handle")
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert list(schema["properties"]) == [f.name for f in tool.inputs]
    assert schema.get("required", []) == [f.name for f in tool.inputs if f.required]


def test_previews_are_downscaled_png_for_maps_and_jpeg_for_photos(tmp_path: Path) -> None:
    import numpy as np

    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 600, 3), dtype=np.uint8), "RGB")
    noisy.save(tmp_path / "photo.png")
    Image.new("RGB", (600, 300), (9, 9, 9)).save(tmp_path / "map.png")  # a grey map stored as RGB
    data, mime = encode_preview(tmp_path / "photo.png", 128)
    assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).size == (128, 64)
    data, mime = encode_preview(tmp_path / "map.png", 128)
    assert mime == "image/png" and Image.open(io.BytesIO(data)).size == (128, 64)
    assert Image.open(io.BytesIO(data)).mode == "L"
    Image.new("RGBA", (40, 40), (255, 0, 0, 0)).save(tmp_path / "cut.png")
    cut = Image.open(tmp_path / "cut.png")
    data, mime = encode_preview(cut, 128, "jpeg")  # from memory, as a server call does
    assert cut.mode == "RGBA"  # the source is left as it was
    assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).getpixel((5, 5)) == (255, 255, 255)


def test_progress_rises_across_phases_and_rearms_a_cancel(tmp_path: Path) -> None:
    sent: list[tuple[float, float, str]] = []
    session = make_session(tmp_path)
    cancelled = threading.Event()

    async def notify(value: float, total: float, message: str) -> None:
        sent.append((value, total, message))

    import anyio.to_thread

    progress = Progress(notify, cancelled, session)

    def work() -> None:
        for i in range(2):
            progress(i, 2, f"loading part{i}")
        progress(2, 2, "models ready")
        for i in range(1, 4):
            progress(i, 3, "denoising")
        cancelled.set()
        progress(1, 3, "denoising")  # a second run restarts its count: still rising

    async def main() -> None:
        await anyio.to_thread.run_sync(work)

    anyio.run(main)
    values = [v for v, _, _ in sent]
    assert values == sorted(set(values)) and len(values) == 7
    assert sent[3][2] == "denoising (1/3)" and sent[-1][1] >= sent[-1][0]
    assert session.cancel_event.is_set()


def test_listen_addresses() -> None:
    assert parse_listen("8000") == ("127.0.0.1", 8000)
    assert parse_listen("0.0.0.0:9") == ("0.0.0.0", 9)
    assert parse_listen("[::1]:8000") == ("::1", 8000)
    for bad in ("host:", "x", "70000"):
        with pytest.raises(VchatError, match="expected \\[HOST:\\]PORT"):
            parse_listen(bad)


def test_a_busy_port_is_one_line() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(VchatError, match=f"^cannot listen on 127.0.0.1:{port}: Address already in use$"):
            check_listen("127.0.0.1", port)


def test_default_roots_refuse_home_and_slash(tmp_path: Path) -> None:
    assert default_roots(tmp_path) == ([tmp_path.resolve()], None)
    for broad in (Path("/"), Path.home()):
        roots, note = default_roots(broad)
        assert roots == [] and note is not None and "pass --allow DIR" in note
    with pytest.raises(VchatError, match="no such folder"):
        allowed_roots([tmp_path / "missing"], tmp_path)


def test_help_does_not_import_the_sdk() -> None:
    code = (
        "import sys\nfrom vchat.cli.app import app\nfor args in (['--help'], ['mcp', '--help']):\n"
        "    try:\n        app(args)\n    except SystemExit:\n        pass\n"
        "print('MCP=' + str('mcp' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert "--allow" in out.stdout and out.stdout.rstrip().endswith("MCP=False")
