"""Start-up cost: `vchat --help` and one model-free tool run next to `import torch`, same run."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def timed(cmd: list[str], runs: int, cwd: Path) -> list[float]:
    """Wall times of `runs` executions of cmd (after one warm-up run for the file cache)."""
    subprocess.run(cmd, capture_output=True, check=True, cwd=cwd)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, cwd=cwd)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        Image.effect_mandelbrot((512, 512), (-2, -1.5, 1, 1.5), 100).convert("RGB").save(folder / "in.png")
        commands = {
            "vchat --help": [py, "-m", "vchat", "--help"],
            "vchat run --tool canny_edges (512²)": [
                py,
                "-m",
                "vchat",
                "run",
                "--tool",
                "canny_edges",
                "-i",
                "in.png",
                "-o",
                "out",
            ],
            'python -c "import torch"': [py, "-c", "import torch"],
        }
        results = {name: timed(cmd, args.runs, folder) for name, cmd in commands.items()}
    torch_median = statistics.median(results['python -c "import torch"'])
    print(f"{'command':<40} {'median s':>9} {'min s':>7} {'max s':>7} {'× import torch':>15}")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name:<40} {median:>9.3f} {min(times):>7.3f} {max(times):>7.3f} {median / torch_median:>15.2f}")
    print(f"({args.runs} runs each after one warm-up, {sys.platform}, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
