"""vchat as an MCP client: an external server (tests/mcp_test_server.py, the official SDK) driven through a Session."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps
from tests.helpers import act, answer, write_photo

from vchat.chat.prompts import TOOL_TEXT_MAX, system_prompt
from vchat.cli.byot import mcp_flag
from vchat.config import ConfigError, Settings, load_settings
from vchat.errors import Cancelled
from vchat.llm.scripted import ScriptedLLM
from vchat.mcp_client import ExternalServers
from vchat.mcp_client.fields import image_form, read_inputs
from vchat.mcp_config import McpServer
from vchat.session import Observers, Session
from vchat.store.refs import read_png_record
from vchat.tools.registry import all_tools

SERVER = Path(__file__).resolve().parent / "mcp_test_server.py"


def _spec(name: str = "t", *extra: str, **options: Any) -> McpServer:
    return McpServer(name, [sys.executable, str(SERVER), *extra], **options)


def _session(tmp_path: Path, servers: dict[str, McpServer], replies: list[str] | None = None) -> Session:
    """A session whose external servers are wired as `vchat` wires them (deferred tools, stopped on close)."""
    warnings: list[str] = []
    hub = ExternalServers(servers, warn=warnings.append)
    session = Session(Settings(out_dir=tmp_path / "out"), all_tools(), ScriptedLLM(replies or []))
    session.sources.add(hub.load, hub.close)
    session.warnings = warnings  # type: ignore[attr-defined]
    return session


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    marker = tmp_path / "cancelled.txt"
    made = _session(tmp_path, {"t": _spec("t", "--marker", str(marker))})
    made.marker = marker  # type: ignore[attr-defined]
    made.attach(write_photo(tmp_path, width=64, height=48))
    yield made
    made.close()


# -- reading a server's schemas --------------------------------------------------------------------------------


def test_image_inputs_are_found_and_sent_as_the_schema_asks() -> None:
    assert image_form("image", {"type": "string", "description": "the input image as a data: URI"}) == "data_uri"
    assert image_form("image_path", {"type": "string", "description": "path of an image file"}) == "path"
    assert image_form("src", {"type": "string", "description": "source image, base64 encoded"}) == "base64"
    assert image_form("picture", {"type": "object"}) == "content"
    assert image_form("x", {"type": "object", "properties": {"data": {}, "mimeType": {}}}) == "content"
    # Text about an image is not an image input; neither are an image's size or prompt.
    assert image_form("prompt", {"type": "string", "description": "what the image should show"}) is None
    assert image_form("image_size", {"type": "integer"}) is None
    assert image_form("image_prompt", {"type": "string"}) is None
    assert image_form("caption", {"type": "string", "description": "a caption, not a path"}) is None


def test_schema_fields_keep_types_bounds_choices_and_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {
            "strength": {"type": "integer", "minimum": 0, "maximum": 100, "default": 100},
            "image": {"type": "string", "description": "an image as a data: URI"},
            "mode": {"type": "string", "enum": ["fast", "good"], "default": "fast"},
            "scale": {"type": ["number", "null"]},
            "boxes": {"type": "array", "items": {"type": "number"}},
        },
        "required": ["image"],
    }
    inputs = read_inputs(schema)
    fields = {f.name: f for f in inputs.fields}
    assert inputs.fields[0].name == "image" and fields["image"].kind == "image" and fields["image"].required
    assert (fields["strength"].kind, fields["strength"].default, fields["strength"].maximum) == ("int", 100, 100.0)
    assert fields["mode"].kind == "choice" and fields["mode"].choices == ("fast", "good")
    assert fields["scale"].kind == "float" and fields["scale"].default is None
    assert inputs.json_fields == {"boxes"} and fields["boxes"].kind == "text"


# -- configuration ------------------------------------------------------------------------------------------------


def test_config_tables_and_the_flag(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[mcp_servers.comfy]\nurl = "http://gpu-box:9000/mcp"\ntools = ["txt2img"]\ntimeout = 600\n'
        '[mcp_servers.ext]\ncommand = ["vchat", "mcp", "--tools", "transform"]\nenv = { HF_HOME = "/data/hf" }\n'
    )
    settings = load_settings(env={}, config_path=config)
    comfy, ext = settings.mcp_servers["comfy"], settings.mcp_servers["ext"]
    assert (comfy.url, comfy.tools, comfy.timeout, comfy.command) == ("http://gpu-box:9000/mcp", ["txt2img"], 600.0, [])
    assert ext.command == ["vchat", "mcp", "--tools", "transform"] and ext.env == {"HF_HOME": "/data/hf"}
    assert mcp_flag("ext=vchat mcp --tools 'transform'").command == ["vchat", "mcp", "--tools", "transform"]
    assert mcp_flag("gpu=https://box/mcp").url == "https://box/mcp"
    for bad, says in [
        ('[mcp_servers.x]\nurl = "ftp://a"\n', "url must start with http"),
        ('[mcp_servers.x]\ncommand = ["a"]\nurl = "http://a"\n', "either command"),
        ('[mcp_servers."a__b"]\ncommand = ["a"]\n', "server name"),
        ('[mcp_servers.x]\ncommand = ["a"]\ncolour = 1\n', "unknown setting 'colour'"),
        ('[mcp_servers.x]\ncommand = ["a"]\ntimeout = 0\n', "timeout must be positive"),
        ('[mcp_servers.x]\ncommand = ["a"]\nheaders = { A = "b" }\n', "headers go with url"),
    ]:
        config.write_text(bad)
        with pytest.raises(ConfigError, match=says):
            load_settings(env={}, config_path=config)
    with pytest.raises(ConfigError, match="NAME=COMMAND"):
        mcp_flag("no-equals-sign")


# -- calls through a session ------------------------------------------------------------------------------------------


def test_the_model_calls_an_external_tool_and_its_image_comes_back_as_a_handle(tmp_path: Path) -> None:
    replies = [act("t__invert", '{"image": "img1"}'), answer("Inverted: img2.")]
    session = _session(tmp_path, {"t": _spec()}, replies)
    try:
        photo = write_photo(tmp_path, width=64, height=48)
        steps = list(session.turn(f"invert {photo}"))
        observation = next(step for step in steps if step.kind == "observation")
        assert observation.tool == "t__invert" and [r.handle for r in observation.images] == ["img2"]
        made = observation.images[0]
        sent = np.asarray(Image.open(photo).convert("RGB"))
        assert np.array_equal(
            np.asarray(Image.open(made.path).convert("RGB")), np.asarray(ImageOps.invert(Image.fromarray(sent)))
        )
        record = read_png_record(made.path)
        assert record is not None and record["tool"] == "t__invert" and record["parents"] == ["img1"]
        assert record["params"]["mcp_server"] == "t" and record["params"]["mcp_tool"] == "invert"
        assert steps[-1].kind == "final"
        # The tool was offered on one compact prompt line, next to vchat's own tools.
        prompt = session.llm.calls[0][0]["content"]  # type: ignore[union-attr]
        line = next(line for line in prompt.splitlines() if line.startswith("t__invert("))
        assert line == "t__invert(image, strength=100): Invert the colours of an image"
    finally:
        session.close()


def test_text_errors_paths_content_and_a_crash_are_observations(session: Session) -> None:
    shouted = session.run_tool("t__shout", named={"text": "hi"})
    assert shouted.observation is not None and len(shouted.observation) < TOOL_TEXT_MAX + 40
    assert shouted.observation.startswith("0: HI\n1: HI") and "more lines" in shouted.observation
    refused = session.run_tool("t__refuse", named={"reason": "nope"})
    assert refused.observation is not None and refused.observation.startswith("t__refuse failed:")
    assert refused.failure == "failed" and not refused.images
    assert session.run_tool("t__path_size", named={"image_path": "img1"}).observation == "64x48"
    assert session.run_tool("t__blob", named={"picture": "img1"}).observation == "image/png 64x48"
    crashed = session.run_tool("t__crash", named={})
    assert crashed.observation == "t__crash failed: MCP server t stopped during the call"
    assert crashed.failure == "failed"
    # The session goes on: the next call starts the server again.
    assert session.run_tool("t__path_size", named={"image_path": "img1"}).observation == "64x48"


def test_progress_drives_the_bar_and_ctrl_c_cancels_the_call_over_mcp(session: Session) -> None:
    seen: list[tuple[int, int, str]] = []
    served: list[Any] = []  # the connection's task while the call ran: the server process it talks to

    def progress(done: int, total: int, label: str) -> None:
        seen.append((done, total, label))
        if len(seen) == 3:  # what the REPL's Ctrl-C handler does
            served.append(session.tools["t__slow"].connection._task)  # type: ignore[attr-defined]
            session.cancel_event.set()

    started = time.perf_counter()
    with pytest.raises(Cancelled):
        session.run_tool("t__slow", named={"seconds": 60}, observers=Observers(progress=progress))
    assert time.perf_counter() - started < 30
    assert seen[0][1] == 100 and seen[0][2].startswith("step ")
    deadline = time.monotonic() + 10
    marker: Path = session.marker  # type: ignore[attr-defined]
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    # The server's handler was cancelled by notifications/cancelled, on the same server, which stayed up.
    assert marker.read_text() == "cancelled"
    connection = session.tools["t__slow"].connection  # type: ignore[attr-defined]
    assert connection.running and connection._task is served[0]
    assert session.run_tool("t__path_size", named={"image_path": "img1"}).observation == "64x48"
    assert connection._task is served[0]


def test_a_call_over_its_time_limit_is_one_line(tmp_path: Path) -> None:
    session = _session(tmp_path, {"t": _spec(timeout=1.0)})
    try:
        step = session.run_tool("t__slow", named={"seconds": 60})
        assert step.observation == "t__slow failed: no answer from MCP server t within 1 s"
        assert step.failure == "failed"
    finally:
        session.close()


def test_a_server_that_never_starts_is_one_warning_and_the_session_goes_on(tmp_path: Path) -> None:
    broken = McpServer("gone", [sys.executable, "-c", "import sys; sys.exit('gone: missing API key')"])
    missing = McpServer("nothere", [str(tmp_path / "no-such-program")])
    replies = [act("canny_edges", "img1"), answer("Edges: img2.")]
    session = _session(tmp_path, {"gone": broken, "nothere": missing, "t": _spec(tools=["invert", "nope"])}, replies)
    try:
        photo = write_photo(tmp_path)
        steps = list(session.turn(f"edges of {photo}"))
        assert steps[-1].kind == "final" and any(step.images for step in steps)
        warnings: list[str] = session.warnings  # type: ignore[attr-defined]
        assert warnings[0] == "MCP server gone did not start: gone: missing API key; going on without its tools"
        assert warnings[1].startswith("MCP server nothere did not start: FileNotFoundError")
        assert warnings[2] == "MCP server t has no tool nope (its tools = [...] names it)"
        assert all("\n" not in w for w in warnings)
        external = sorted(name for name in session.tools if "__" in name)
        assert external == ["t__invert"]  # `tools = [...]` offers only those named
    finally:
        session.close()


def test_servers_are_stopped_with_the_session(tmp_path: Path) -> None:
    session = _session(tmp_path, {"t": _spec()})
    before = set(threading.enumerate())
    session.sources.tools()
    loops = [t for t in set(threading.enumerate()) - before if t.name == "vchat-mcp-client"]
    assert len(loops) == 1 and "t__invert" in session.tools
    session.close()
    assert not any(t.is_alive() for t in loops)


def test_external_tools_fit_the_prompt_budget(tmp_path: Path) -> None:
    hub = ExternalServers({"t": _spec()})
    try:
        external = [type(tool) for tool in hub.load()]
    finally:
        hub.close()
    import bpe_openai

    encoding = bpe_openai.get_encoding("o200k_base")
    base = system_prompt([type(t) for t in all_tools()])
    both = system_prompt([*(type(t) for t in all_tools()), *external])
    added = len(encoding.encode(both)) - len(encoding.encode(base))
    # One line per tool, each a signature and one short sentence (the test server's 8 tools).
    assert len(both.splitlines()) - len(base.splitlines()) == len(external) == 8
    assert added <= 25 * len(external), added
    # Native function calling gets them too, under names every provider accepts.
    from vchat.tools.schema import function_spec

    names = [function_spec(cls)["function"]["name"] for cls in external]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) for name in names) and "t__invert" in names


def test_the_repl_starts_servers_at_tools_and_runs_their_tools(session: Session) -> None:
    import io

    from rich.console import Console

    from vchat.cli.repl import Repl

    out = io.StringIO()
    repl = Repl(session, Console(file=out, width=200, highlight=False))
    assert not any("__" in name for name in session.tools)  # nothing started yet
    repl.handle("/tools")
    assert "t__invert" in out.getvalue() and "[MCP server t]" in out.getvalue()
    repl.handle("/tool t__invert img1")
    made = [ref for ref in session.store if ref.tool == "t__invert"]
    assert len(made) == 1 and made[0].parents == ("img1",)


def test_an_http_server_gets_the_configured_headers_with_variables_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port)], stderr=subprocess.DEVNULL)
    monkeypatch.setenv("VCHAT_TEST_TOKEN", "s3cret")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[mcp_servers.h]\nurl = "http://127.0.0.1:{port}/mcp"\nstart_timeout = 60\n'
        '[mcp_servers.h.headers]\nAuthorization = "Bearer ${VCHAT_TEST_TOKEN}"\n'
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        session = _session(tmp_path, load_settings(env={}, config_path=config).mcp_servers)
        try:
            step = session.run_tool("h__header", named={"name": "Authorization"})
            assert step.observation == "Bearer s3cret"
        finally:
            session.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_bench_with_real_tools_offers_the_external_tools_too(tmp_path: Path) -> None:
    from vchat.bench.capabilities import session_classes
    from vchat.bench.planners import reference_planner
    from vchat.bench.runner import BenchError, run_suite
    from vchat.bench.suite import builtin_tasks

    classes = session_classes()
    flip = [task for task in builtin_tasks() if task.id == "flip"]
    made: list[ScriptedLLM] = []

    def planner(task: Any) -> ScriptedLLM:
        made.append(reference_planner(task, classes))
        return made[-1]

    settings = Settings(out_dir=tmp_path / "out", mcp_servers={"t": _spec()}, plugins=False)
    runs = run_suite(flip, planner, settings, classes, real=True)
    assert runs[0][0].score.passed, runs[0][0].score.reasons
    prompt = made[0].calls[0][0]["content"]
    assert "\nt__invert(image, strength=100): Invert the colours of an image\n" in prompt
    down = McpServer("down", [sys.executable, "-c", "raise SystemExit('down: no GPU')"])
    with pytest.raises(BenchError, match=r"^MCP server down did not start: down: no GPU; fix it or leave it out"):
        run_suite(flip, planner, Settings(out_dir=tmp_path / "o2", mcp_servers={"down": down}), classes, real=True)
