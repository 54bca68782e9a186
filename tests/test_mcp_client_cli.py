"""A second `vchat mcp --tools transform` as vchat's external server, over stdio and HTTP, through the real CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from tests.helpers import act, answer, write_photo

from vchat.cli.byot import server_rows
from vchat.config import Settings
from vchat.mcp_config import McpServer
from vchat.store.refs import read_png_record


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        COLUMNS="200",
        NO_COLOR="1",
        PYTHONWARNINGS="ignore",
    )
    return env


def _vchat(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vchat", *args]
    return subprocess.run(command, capture_output=True, text=True, env=_env(tmp_path), timeout=120, cwd=tmp_path)


def _server_env() -> dict[str, str]:
    """What the external server needs beyond the SDK's minimal default environment: this checkout's sources."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "script.txt"
    script.write_text(f"{act('ext__transform', json.dumps({'image': 'img1', 'op': 'flip'}))}\n---\n{answer('img2')}\n")
    return script


def _check_flipped(tmp_path: Path, result: subprocess.CompletedProcess[str], photo: Path) -> None:
    """The run's JSON names img2, made by ext__transform from img1, and it is the photo flipped by the other vchat."""
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    made = next(image for image in report["images"] if image["handle"] == "img2")
    assert made["tool"] == "ext__transform" and made["parents"] == ["img1"]
    flipped = ImageOps.mirror(Image.open(photo).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(made["path"]).convert("RGB")), np.asarray(flipped))
    record = read_png_record(Path(made["path"]))
    assert record is not None and record["params"]["mcp_server"] == "ext"
    assert record["params"]["mcp_tool"] == "transform" and record["params"]["op"] == "flip"
    observation = report["steps"][0]["observation"]
    assert observation.startswith("Horizontal flip of img1") and "/" not in observation  # our handles, no paths


def test_run_with_a_config_table_uses_a_second_vchat_over_stdio(tmp_path: Path) -> None:
    photo = write_photo(tmp_path, "A.png", width=64, height=48)
    command = [sys.executable, "-m", "vchat", "mcp", "--tools", "transform", "--out", str(tmp_path / "ext-out")]
    command += ["--preview-size", "16"]  # the full-size PNG must come back (read from its link), not the preview
    config = tmp_path / "config.toml"
    env = "".join(f"{key} = {json.dumps(value)}\n" for key, value in _server_env().items())
    config.write_text(f"[mcp_servers.ext]\ncommand = {json.dumps(command)}\n[mcp_servers.ext.env]\n{env}")
    script = _script(tmp_path)
    out = str(tmp_path / "out")
    result = _vchat(
        tmp_path,
        "run",
        "flip it",
        "-i",
        str(photo),
        "--json",
        "--llm",
        f"scripted:{script}",
        "--config",
        str(config),
        "--out",
        out,
    )
    _check_flipped(tmp_path, result, photo)
    # The other vchat made the image in its own session folder: the external server really did the work.
    assert list((tmp_path / "ext-out").glob("*/img2-flip_image.png"))
    listed = _vchat(tmp_path, "tools", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    section = listed.stdout.split("MCP server ext (")[1]
    assert "ext__transform" in section and "[MCP server ext]" in section
    direct = _vchat(
        tmp_path,
        "run",
        "--tool",
        "ext__transform",
        "-i",
        str(photo),
        "--arg",
        "op=grayscale",
        "--config",
        str(config),
        "--out",
        out,
        "--json",
    )
    assert direct.returncode == 0, direct.stderr
    grey = next(i for i in json.loads(direct.stdout)["images"] if i["tool"] == "ext__transform")
    assert Image.open(grey["path"]).mode in ("L", "RGB")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_vchat(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "vchat",
        "mcp",
        "--http",
        str(port),
        "--tools",
        "transform",
        "--out",
        str(tmp_path / "ext-out"),
        "--preview-size",
        "16",
    ]
    server = subprocess.Popen(command, env=_env(tmp_path), stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "the HTTP server exited"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_run_with_the_mcp_flag_uses_a_second_vchat_over_http(tmp_path: Path, http_vchat: str) -> None:
    photo = write_photo(tmp_path, "A.png", width=64, height=48)
    script = _script(tmp_path)
    result = _vchat(
        tmp_path,
        "run",
        "flip it",
        "-i",
        str(photo),
        "--json",
        "--llm",
        f"scripted:{script}",
        "--mcp",
        f"ext={http_vchat}",
        "--out",
        str(tmp_path / "out"),
    )
    _check_flipped(tmp_path, result, photo)


def test_bad_mcp_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = _vchat(tmp_path, "run", "hi", "--mcp", "nonsense", "--llm", "none")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "NAME=COMMAND" in result.stderr


def test_doctor_rows_start_each_server_and_list_its_tools(tmp_path: Path) -> None:
    good = McpServer("ext", [sys.executable, "-m", "vchat", "mcp", "--tools", "transform"], env=_server_env())
    bad = McpServer("down", [sys.executable, "-c", "raise SystemExit('down: no GPU here')"])
    rows = dict(server_rows(Settings(out_dir=tmp_path, mcp_servers={"ext": good, "down": bad}, plugins=False)))
    assert rows["mcp ext"].startswith("started in ") and rows["mcp ext"].endswith(": ext__transform")
    assert rows["mcp down"] == "error: MCP server down did not start: down: no GPU here"


def test_batch_runs_an_external_tool_over_every_image(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    originals = [write_photo(photos, f"p{n}.png", width=40 + n, height=30, seed=n) for n in range(3)]
    command = [sys.executable, "-m", "vchat", "mcp", "--tools", "transform", "--out", str(tmp_path / "ext-out")]
    config = tmp_path / "config.toml"
    env = "".join(f"{key} = {json.dumps(value)}\n" for key, value in _server_env().items())
    config.write_text(f"[mcp_servers.ext]\ncommand = {json.dumps(command)}\n[mcp_servers.ext.env]\n{env}")
    out = tmp_path / "cut"
    args = ["batch", "--tool", "ext__transform", "--arg", "op=flip", str(photos), "--out", str(out)]
    result = _vchat(tmp_path, *args, "--config", str(config))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    done = [line for line in lines if line.get("status") == "done"]
    assert len(done) == 3
    for line in done:
        source = next(p for p in originals if p.name in line["input"])
        made = out / line["outputs"][0]
        flipped = ImageOps.mirror(Image.open(source).convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(made).convert("RGB")), np.asarray(flipped))


def test_a_tool_of_a_server_that_does_not_start_is_an_error_not_a_crash(tmp_path: Path) -> None:
    photo = write_photo(tmp_path, "A.png")
    down = f"down={sys.executable} -c \"raise SystemExit('down: no token')\""
    result = _vchat(tmp_path, "run", "--tool", "down__x", "-i", str(photo), "--mcp", down, "--out", str(tmp_path / "o"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "warning: MCP server down did not start: down: no token; going on without its tools",
        "error: down__x is not available: MCP server down does not offer it (see above)",
    ]


def test_ctrl_c_in_vchat_run_cancels_the_external_call(tmp_path: Path) -> None:
    import signal

    marker = tmp_path / "cancelled.txt"
    server = Path(__file__).resolve().parent / "mcp_test_server.py"
    flag = f"t={sys.executable} {server} --marker {marker}"
    command = [sys.executable, "-m", "vchat", "run", "--tool", "t__slow", "--arg", "seconds=60", "--mcp", flag]
    proc = subprocess.Popen(
        [*command, "--out", str(tmp_path / "o")], env=_env(tmp_path), cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.0)
        deadline = time.monotonic() + 60
        # Wait until the call is under way (the server reports progress at once), then press Ctrl-C.
        while not list((tmp_path / "o").glob("*/session.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    # The server's handler was cancelled (by notifications/cancelled, or at the latest when vchat stopped the server
    # on its way out); test_mcp_client.py shows the notification alone does it, on a server that stays up.
    assert marker.read_text() == "cancelled"
