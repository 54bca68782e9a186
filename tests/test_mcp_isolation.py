"""`vchat mcp`: clients kept apart across restarts, Host/Origin checked on every address, hostile arguments answered."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult
from tests import gen_fixtures as gf
from tests.helpers import write_photo


def _env(tmp_path: Path) -> dict[str, str]:
    return gf.env_for_subprocess({"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_DATA_HOME": str(tmp_path / "data")})


def _text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def _stdio(tmp_path: Path, allowed: Path) -> StdioServerParameters:
    # The default layout: the output folder inside the allowed folder, so session images are reachable by path.
    args = ["-m", "vchat", "mcp", "--allow", str(allowed), "--out", str(allowed / "vchat-out")]
    return StdioServerParameters(command=sys.executable, args=args, env=_env(tmp_path), cwd=str(allowed))


@pytest.mark.slow
def test_a_restarted_server_keeps_earlier_sessions_out_of_reach(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    write_photo(allowed, "photo.png")

    async def first_run() -> tuple[str, str]:
        async with Client(_stdio(tmp_path, allowed)) as client:
            made = await client.call_tool("transform", {"image": "photo.png", "op": "flip"})
            assert not made.is_error, _text(made)
            image = made.structured_content["images"][0]
            return image["path"], str(Path(image["path"]).parent / "img1.png")

    output, _ = anyio.run(first_run)
    copies = [p for p in Path(output).parent.iterdir() if p.suffix == ".png" and str(p) != output]
    assert Path(output).is_file() and copies  # the output and the input's copy, in the first client's folder

    async def second_run() -> list[CallToolResult]:
        async with Client(_stdio(tmp_path, allowed)) as client:
            own = await client.call_tool("transform", {"image": "photo.png", "op": "grayscale"})
            assert not own.is_error, _text(own)
            return [await client.call_tool("transform", {"image": str(p), "op": "flip"}) for p in [output, *copies]]

    for refused in anyio.run(second_run):
        assert refused.is_error and "belongs to another session" in _text(refused), _text(refused)


def _rpc(proc: subprocess.Popen[bytes], message: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(message.encode("ascii") + b"\n")
    proc.stdin.flush()


def test_lone_surrogate_argument_gets_a_reply(tmp_path: Path) -> None:
    # Raw JSON-RPC: the official client cannot even send a lone surrogate (it fails to encode it), but JSON can.
    allowed = tmp_path / "allowed"
    write_photo(allowed, "photo.png")
    params = _stdio(tmp_path, allowed)
    proc = subprocess.Popen(
        [params.command, *params.args],
        env=params.env,
        cwd=params.cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,  # unbuffered: a second line must not wait in a buffer select() cannot see
    )
    try:
        _rpc(
            proc,
            '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
            '"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}',
        )
        _rpc(proc, '{"jsonrpc":"2.0","method":"notifications/initialized"}')
        _rpc(
            proc,
            '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"transform",'
            '"arguments":{"image":"bad\\udcff.png","op":"flip"}}}',
        )
        assert proc.stdout is not None
        replies: dict[int, dict[str, object]] = {}
        deadline = time.monotonic() + 60
        while 2 not in replies:
            assert time.monotonic() < deadline, "no reply to the call"
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                line = proc.stdout.readline()
                assert line, "the server closed the stream without a reply"
                message = json.loads(line)
                if "id" in message:
                    replies[int(message["id"])] = message
    finally:
        proc.kill()
        proc.wait(timeout=30)
    result = replies[2]["result"]
    assert isinstance(result, dict) and result["isError"] is True
    assert "\ufffd" in result["content"][0]["text"]


@pytest.mark.slow
def test_sigterm_closes_the_server_cleanly(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vchat", "mcp", "--allow", str(allowed), "--out", str(tmp_path / "out")],
        env=_env(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "tools on stdio" in line, line
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0  # the server's own cleanup ran (a default SIGTERM death reads -15)


def _gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


@pytest.mark.slow
def test_sigterm_mid_call_ends_the_call_and_the_server(tmp_path: Path) -> None:
    from vchat.store.transcript import read_records

    allowed, out = tmp_path / "allowed", tmp_path / "out"
    allowed.mkdir()
    args = ["-m", "vchat", "mcp", "--allow", str(allowed), "--out", str(out)]
    params = StdioServerParameters(command=sys.executable, args=args, env=_env(tmp_path), cwd=str(allowed))
    killed: list[int] = []
    exited_after: list[float] = []

    async def main() -> None:
        async with Client(params) as client:

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                if message and message.startswith("denoising") and not killed:
                    # The session lock holds the server's pid: stop it as a service manager would.
                    killed.append(int(next(out.glob("*/.lock")).read_text()))
                    os.kill(killed[0], signal.SIGTERM)

            async def call() -> None:
                slow = {"prompt": "a red car", "steps": 150, "width": 64, "height": 64}
                with contextlib.suppress(Exception):  # the server goes away mid-call
                    await client.call_tool("generate_image", slow, progress_callback=on_progress)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call)
                with anyio.fail_after(120):
                    while not killed:
                        await anyio.sleep(0.05)
                started = time.monotonic()
                # The client still holds the server's stdin open: the server must exit on its own.
                while not _gone(killed[0]) and time.monotonic() - started < 30:
                    await anyio.sleep(0.1)
                exited_after.append(time.monotonic() - started)
                tasks.cancel_scope.cancel()

    with contextlib.suppress(BaseException):  # how the SDK reports a server that went away varies
        anyio.run(main)
    assert killed, "the call never reached its denoising steps"
    assert exited_after and exited_after[0] < 30, "the server did not exit on SIGTERM"
    # Cleaned up: the cancelled call's session made nothing and is removed, or its transcript records the cancel.
    for transcript in out.glob("*/session.jsonl"):
        records, _ = read_records(transcript)
        assert [r.get("tool") for r in records if r["type"] == "cancelled"] == ["generate_image"], records[-3:]


def test_loopback_is_all_of_127_and_not_the_wildcards() -> None:
    from vchat.mcp_server.rebinding import is_loopback, machine_names

    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.0.2.7")
    assert "evil.example" not in machine_names("0.0.0.0")


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


EXTRA_HOST = ("--allow-host", "proxy.example")


@pytest.fixture(params=["127.0.0.2", "0.0.0.0", "::"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int, str]]:
    host = str(request.param)
    try:
        port = _free_port(host)
    except OSError:
        pytest.skip(f"cannot listen on {host} here")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vchat", "mcp", "--http", f"[{host}]:{port}", *("--allow", str(allowed)), *EXTRA_HOST],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    connect = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                socket.create_connection((connect, port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.2)
        yield host, port, connect
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    assert ("not loopback" in err) == (host in ("0.0.0.0", "::")), err


INIT = (
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
    b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'
)


def _post(connect: str, port: int, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection(connect, port, timeout=30)
    try:
        base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        conn.request("POST", "/mcp", body=INIT, headers={**base, **headers})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.slow
def test_rebinding_refused_on_every_address(served: tuple[str, int, str]) -> None:
    _host, port, connect = served
    own = f"[{connect}]:{port}" if ":" in connect else f"{connect}:{port}"
    assert _post(connect, port, {"Host": "evil.example"}) == 421
    assert _post(connect, port, {"Host": own, "Origin": "http://evil.example"}) == 403
    assert _post(connect, port, {"Host": own}) == 200
    assert _post(connect, port, {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}) == 200
    assert _post(connect, port, {"Host": "proxy.example", "Origin": "https://proxy.example"}) == 200  # --allow-host


def test_stateless_sessions_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vchat.config import Settings
    from vchat.errors import VchatError
    from vchat.mcp_server import workspaces
    from vchat.tools.registry import all_tools

    monkeypatch.setattr(workspaces, "MAX_STATELESS", 3)
    spaces = workspaces.Workspaces(Settings(out_dir=tmp_path / "out"), all_tools(), [tmp_path])
    try:
        made = [spaces.new(stateless=True) for _ in range(3)]
        with pytest.raises(VchatError, match="already keeps 3 sessions of stateless calls"):
            spaces.new(stateless=True)
        assert spaces.new(stateless=False) is not None  # clients with a protocol session are not counted
        spaces.close(made[0], forget=True)  # a chain that made nothing is forgotten: room for a new one
        assert spaces.new(stateless=True) is not None
    finally:
        spaces.close_all()
