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
    direct_proc = subprocess.Popen(
        [sys.executable, "-c", DIRECT, str(work / "direct"), str(photo)],
        env=env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert direct_proc.stdin is not None and direct_proc.stdout is not None
    assert direct_proc.stdout.readline().strip() == "ready"

    def stdio(*extra: str) -> StdioServerParameters:
        argv = ["-m", "vchat", "mcp", "--allow", str(work), "--out", str(work / "mcp"), *extra]
        return StdioServerParameters(command=sys.executable, args=argv, env=env(), cwd=str(work))

    port = free_port()
    http_argv = [sys.executable, "-m", "vchat", "mcp", "--http", str(port), "--allow", str(work)]
    http = subprocess.Popen([*http_argv, "--out", str(work / "http")], env=env(), stderr=subprocess.DEVNULL)
    sizes: dict[str, list[int]] = {}
    try:
        wait_for_port(port, http)
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
                direct_proc.stdin.write("call\n")
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

            sides: dict[str, Callable[[], Awaitable[float]]] = {"Session.run_tool": direct}
            sides.update({name: over(name, client) for name, client in clients.items()})
            times: dict[str, list[float]] = {name: [] for name in sides}
            for round_ in range(args.warmup + args.calls):
                for name, call in sides.items():
                    seconds = await call()
                    if round_ >= args.warmup:
                        times[name].append(seconds)
    finally:
        http.terminate()
        http.wait(timeout=30)
        direct_proc.stdin.close()
        direct_proc.wait(timeout=30)
    args.sizes = sizes
    return times


def report(times: dict[str, list[float]], sizes: dict[str, list[int]], args: argparse.Namespace) -> None:
    """Print the side-by-side table."""
    base = statistics.median(times["Session.run_tool"])
    print(f"canny_edges on a {args.size}x{args.size} photo, {args.calls} calls per side (medians), interleaved")
    print(f"{'side':<30} {'median ms':>10} {'p90 ms':>8} {'overhead ms':>12} {'ratio':>6} {'reply bytes':>12}")
    for name, values in times.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else median
        reply = f"{int(statistics.median(sizes[name])):,}" if name in sizes else "-"
        over = "-" if name == "Session.run_tool" else f"{(median - base) * 1000:+.1f}"
        print(f"{name:<30} {median * 1000:>10.1f} {p90 * 1000:>8.1f} {over:>12} {median / base:>6.2f} {reply:>12}")


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
