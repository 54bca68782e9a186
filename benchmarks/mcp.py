"""Per-call overhead of `vchat mcp`: canny_edges through the MCP client next to `Session.run_tool`, one run.

    python benchmarks/mcp.py                    # 512 px photo, 40 calls per side
    python benchmarks/mcp.py --size 1024 --calls 60

Sides, called in turn so that drift in the machine's speed hits all of them alike:
- `Session.run_tool`: the tool call as `vchat run --tool` and the REPL make it (binding, loading and validating the
  input, Canny, the atomic fsynced PNG write with its lineage chunk, the transcript record), timed inside a
  process of its own (no protocol at all).
- MCP stdio: the official client calling `vchat mcp` in a subprocess: JSON-RPC framing, argument binding, the
  worker-thread hop, the same Session.run_tool, then the preview (downscaled, encoded, base64) and the result.
- MCP stdio, --preview-size 0: the same without image content (links only), to show what the preview costs.
- MCP HTTP: the same over streamable HTTP on 127.0.0.1 (protocol 2026-07-28: stateless, the image named by URI).
- MCP HTTP, 2025-11-25 session: a handshake-era client, its calls tied together by the Mcp-Session-Id.
- vchat client (column): the other direction, vchat as the MCP client of another `vchat mcp` (`[mcp_servers.ext]`),
  `Session.run_tool("ext__detect_map")` timed inside a process of its own, over stdio (a server of its own) and over
  HTTP (the same HTTP server): sending img1 as a data: URI, the remote call, reading the full-size PNG back through
  its resource link, and saving it in the local session with its lineage. Shown on the stdio and HTTP rows.
The input image is attached once per side (img1); every call makes a new image from it. Medians are compared.
Every MCP client has a vchat session of its own on the server (the HTTP clients share one server and runtime).
MCP clients call canny_edges as it is listed, `detect_map` with kind=canny (the same Canny tool behind one
more dict check); `Session.run_tool` calls canny_edges by name.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is named mcp.py: its folder on sys.path would shadow the `mcp` SDK it benchmarks.
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != HERE]
sys.path.insert(0, str(ROOT / "src"))


# The Session.run_tool side: one session, the photo attached as img1, one timed canny_edges call per input line.
DIRECT = """
import sys, time
from pathlib import Path
from vchat.config import Settings
from vchat.session import Session
from vchat.tools.registry import all_tools
session = Session(Settings(out_dir=Path(sys.argv[1])), all_tools())
session.attach(sys.argv[2])
print("ready", flush=True)
for _ in sys.stdin:
    start = time.perf_counter()
    step = session.run_tool("canny_edges", named={"image": "img1"})
    seconds = time.perf_counter() - start
    assert step.images, step.observation
    print(seconds, flush=True)
"""


# The vchat-as-client side: a session whose external server `ext` is another vchat; one timed call per input line.
CLIENT = """
import sys, time
from pathlib import Path
from vchat.config import Settings
from vchat.mcp_config import McpServer
from vchat.mcp_client import ExternalServers
from vchat.session import Session
from vchat.tools.registry import all_tools
target = sys.argv[3]
spec = McpServer("ext", url=target) if target.startswith("http") else McpServer("ext", target.split("\\x1f"))
servers = ExternalServers({"ext": spec})
session = Session(Settings(out_dir=Path(sys.argv[1])), all_tools())
session.sources.add(servers.load, servers.close)
session.attach(sys.argv[2])
session.sources.tools()
print("ready", flush=True)
for _ in sys.stdin:
    start = time.perf_counter()
    step = session.run_tool("ext__detect_map", named={"image": "img1", "kind": "canny"})
    seconds = time.perf_counter() - start
    assert step.images, step.observation
    print(seconds, flush=True)
session.close()
"""


def timed_process(code: str, *argv: str) -> subprocess.Popen[str]:
    """A Python process that answers each input line with the seconds of one call, once it printed "ready"."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv], env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_photo(path: Path, size: int) -> None:
    """A real photograph (scikit-image's astronaut) at size x size, or a synthetic one without scikit-image."""
    from PIL import Image

    try:
        from skimage import data

        image = Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS)
    except ImportError:
        import numpy as np

        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), "RGB")
    image.save(path)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env() -> dict[str, str]:
    """The subprocess sees this checkout's sources."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), out.get("PYTHONPATH")]))
    return out


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Block until the HTTP server accepts connections."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the HTTP server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the HTTP server did not start")


async def run(args: argparse.Namespace, work: Path) -> dict[str, list[float]]:
    """Time every side, calls interleaved; returns seconds per call by side."""
    from contextlib import AsyncExitStack

    from mcp import Client, StdioServerParameters

    photo = work / "photo.png"
    test_photo(photo, args.size)
    # Session.run_tool runs in a process of its own, like each server, so that no side shares a process with the
    # benchmark's clients; it times each call itself and answers with the seconds.
    direct_proc = timed_process(DIRECT, str(work / "direct"), str(photo))
    assert direct_proc.stdin is not None and direct_proc.stdout is not None

    def stdio(*extra: str) -> StdioServerParameters:
        argv = ["-m", "vchat", "mcp", "--allow", str(work), "--out", str(work / "mcp"), *extra]
        return StdioServerParameters(command=sys.executable, args=argv, env=env(), cwd=str(work))

    port = free_port()
    http_argv = [sys.executable, "-m", "vchat", "mcp", "--http", str(port), "--allow", str(work)]
    http = subprocess.Popen([*http_argv, "--out", str(work / "http")], env=env(), stderr=subprocess.DEVNULL)
    sizes: dict[str, list[int]] = {}
    clients_of: dict[str, subprocess.Popen[str]] = {}
    try:
        wait_for_port(port, http)
        # vchat as the client: its own stdio server (the same command line as the SDK's stdio side), and the HTTP one.
        server_argv = [sys.executable, "-m", "vchat", "mcp", "--out", str(work / "ext-stdio")]
        clients_of["MCP stdio"] = timed_process(
            CLIENT, str(work / "client-stdio"), str(photo), "\x1f".join(server_argv)
        )
        url = f"http://127.0.0.1:{port}/mcp"
        clients_of["MCP HTTP"] = timed_process(CLIENT, str(work / "client-http"), str(photo), url)
        async with AsyncExitStack() as stack:
            clients = {
                "MCP stdio": await stack.enter_async_context(Client(stdio())),
                "MCP stdio, --preview-size 0": await stack.enter_async_context(Client(stdio("--preview-size", "0"))),
                "MCP HTTP": await stack.enter_async_context(Client(f"http://127.0.0.1:{port}/mcp")),
                "MCP HTTP, 2025-11-25 session": await stack.enter_async_context(
                    Client(f"http://127.0.0.1:{port}/mcp", mode="legacy")
                ),
            }
            inputs: dict[str, str] = {}
            for name, client in clients.items():  # attach the photo: img1 on every side
                made = await client.call_tool("transform", {"image": "photo.png", "op": "flip"})
                image = made.structured_content["images"][0]
                # A stateless client names images by URI (the result's handle is one); the others by handle.
                inputs[name] = image["uri"].removesuffix("img2") + "img1" if image["handle"] != "img2" else "img1"

            async def direct() -> float:
                assert direct_proc.stdin is not None and direct_proc.stdout is not None
                direct_proc.stdin.write("call\n")
                direct_proc.stdin.flush()
                return float(direct_proc.stdout.readline())

            def over(name: str, client: Any) -> Callable[[], Awaitable[float]]:
                async def call() -> float:
                    start = time.perf_counter()
                    result = await client.call_tool("detect_map", {"image": inputs[name], "kind": "canny"})
                    seconds = time.perf_counter() - start
                    assert not result.is_error, result.content
                    sizes.setdefault(name, []).append(len(result.model_dump_json(by_alias=True)))
                    return seconds

                return call

            def vchat_client(proc: subprocess.Popen[str]) -> Callable[[], Awaitable[float]]:
                async def call() -> float:
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write("call\n")
                    proc.stdin.flush()
                    return float(proc.stdout.readline())

                return call

            sides: dict[str, Callable[[], Awaitable[float]]] = {"Session.run_tool": direct}
            sides.update({name: over(name, client) for name, client in clients.items()})
            sides.update({f"{name} (vchat client)": vchat_client(proc) for name, proc in clients_of.items()})
            times: dict[str, list[float]] = {name: [] for name in sides}
            for round_ in range(args.warmup + args.calls):
                for name, call in sides.items():
                    seconds = await call()
                    if round_ >= args.warmup:
                        times[name].append(seconds)
    finally:
        for proc in [direct_proc, *clients_of.values()]:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=60)
        http.terminate()
        http.wait(timeout=30)
    args.sizes = sizes
    return times


def report(times: dict[str, list[float]], sizes: dict[str, list[int]], args: argparse.Namespace) -> None:
    """Print the side-by-side table; the vchat-client column shows vchat calling the same server as its client."""
    base = statistics.median(times["Session.run_tool"])
    print(f"canny_edges on a {args.size}x{args.size} photo, {args.calls} calls per side (medians), interleaved")
    header = f"{'side':<30} {'median ms':>10} {'p90 ms':>8} {'overhead ms':>12} {'ratio':>6} {'reply bytes':>12}"
    print(f"{header} {'vchat client ms':>16} {'its overhead ms':>16}")
    for name, values in times.items():
        if name.endswith(" (vchat client)"):
            continue
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else median
        reply = f"{int(statistics.median(sizes[name])):,}" if name in sizes else "-"
        over = "-" if name == "Session.run_tool" else f"{(median - base) * 1000:+.1f}"
        client = times.get(f"{name} (vchat client)")
        mine = f"{statistics.median(client) * 1000:.1f}" if client else "-"
        mine_over = f"{(statistics.median(client) - base) * 1000:+.1f}" if client else "-"
        row = f"{name:<30} {median * 1000:>10.1f} {p90 * 1000:>8.1f} {over:>12} {median / base:>6.2f} {reply:>12}"
        print(f"{row} {mine:>16} {mine_over:>16}")


def main() -> None:
    """Parse options, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="side of the input photo in pixels")
    parser.add_argument("--calls", type=int, default=40, help="timed calls per side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per side first")
    args = parser.parse_args()
    import anyio

    with tempfile.TemporaryDirectory(prefix="vchat-bench-mcp-") as tmp:
        times = anyio.run(run, args, Path(tmp))
    report(times, args.sizes, args)


if __name__ == "__main__":
    main()
