"""Sixel benchmark against libsixel's img2sixel on the same images: vchat's encoder in-process, and
`vchat show` as a whole process (start-up, imports, decode, scale, encode, write), as a user runs it.

Needs img2sixel and sixel2png from libsixel: `apt-get install libsixel-bin` (Debian, Ubuntu),
`brew install libsixel` (macOS). `--baseline SRC` also times `vchat show` from another checkout's
src folder (e.g. a worktree of the previous commit) in the same interleaved runs: a before/after
under one and the same machine load.
"""

from __future__ import annotations

import argparse
import functools
import io
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from vchat.ui.preview import encode_sixel_pixels


def source_image() -> tuple[str, Image.Image]:
    """A 1024² photo: scikit-image's astronaut when installed, else a photo-like synthetic image."""
    try:
        from skimage import data

        return "astronaut", Image.fromarray(data.astronaut()).resize((1024, 1024), Image.Resampling.LANCZOS)
    except ImportError:
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:1024, 0:1024] / 1024.0
        base = np.stack(
            [200 * x + 40 * np.sin(9 * y), 180 * y + 50 * np.cos(7 * x), 120 + 90 * np.sin(5 * (x + y))], -1
        )
        pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        return "synthetic", Image.fromarray(pixels, "RGB")


def median_ms(fns: tuple[Callable[[], bytes], ...], runs: int) -> list[tuple[float, bytes]]:
    """Median wall time of each function, runs interleaved so load changes hit both alike."""
    outs = [fn() for fn in fns]  # warm-up: imports, lookup tables, page cache
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            outs[i] = fn()
            times[i].append((time.perf_counter() - start) * 1000)
    return [(statistics.median(t), out) for t, out in zip(times, outs, strict=True)]


def mean_abs_error(sixel: bytes, reference: Image.Image) -> float | None:
    """Decode with libsixel's sixel2png and compare with the source pixels."""
    if shutil.which("sixel2png") is None:
        return None
    done = subprocess.run(["sixel2png"], input=sixel, capture_output=True, check=True)
    back = np.asarray(Image.open(io.BytesIO(done.stdout)).convert("RGB"), dtype=np.int32)
    return float(np.abs(back - np.asarray(reference, dtype=np.int32)).mean())


SRC = Path(__file__).resolve().parents[1] / "src"


def decoded_size(sixel: bytes) -> str:
    """`W×H` of a sixel stream, decoded by sixel2png (the preview's text line after it is ignored)."""
    if shutil.which("sixel2png") is None:
        return "-"
    start, end = sixel.find(b"\x1bP"), sixel.find(b"\x1b\\")
    done = subprocess.run(["sixel2png"], input=sixel[start : end + 2], capture_output=True, check=True)
    width, height = Image.open(io.BytesIO(done.stdout)).size
    return f"{width}×{height}"


def _run(cmd: list[str], env: dict[str, str]) -> bytes:
    return subprocess.run(cmd, capture_output=True, check=True, env=env).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per encoder and size (median reported)")
    parser.add_argument("--baseline", type=Path, metavar="SRC", help="also time `vchat show` from this src folder")
    args = parser.parse_args()
    img2sixel = shutil.which("img2sixel")
    if img2sixel is None:
        print("img2sixel not found: apt-get install libsixel-bin (macOS: brew install libsixel)", file=sys.stderr)
        return 1
    name, big = source_image()
    print(f"image: {name}; all start from the same PNG file; median of {args.runs} interleaved runs")
    print("ours = PNG decode + quantise + encode in-process; img2sixel = a process on the file;")
    print("vchat show = `python -m vchat show --preview sixel FILE` as a whole process, output to a pipe")
    header = (
        "image",
        "ours ms",
        "img2sixel ms",
        "ratio",
        "vchat show ms",
        "show ratio",
        "show px",
        *(["baseline show ms", "baseline ratio"] if args.baseline else []),
        "ours bytes",
        "img2sixel bytes",
        "ours MAE",
        "img2sixel MAE",
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for side in (512, 1024):
            image = big if side == 1024 else big.resize((side, side), Image.Resampling.LANCZOS)
            path = Path(tmp) / f"{name}-{side}.png"
            image.save(path)

            def ours(path: Path = path) -> bytes:
                with Image.open(path) as img:
                    return encode_sixel_pixels(img.convert("RGB"))

            def theirs(path: Path = path) -> bytes:
                return subprocess.run([img2sixel, str(path)], capture_output=True, check=True).stdout

            # The preview box is whole terminal cells (10x20 px without a terminal to ask): the smallest box
            # that holds the image, so `vchat show` draws it at its own size, as img2sixel does.
            env = dict(os.environ, COLUMNS=str(math.ceil(side / 10)), LINES=str(math.ceil(side / 20) + 2))
            show_cmd = [sys.executable, "-m", "vchat", "show", "--preview", "sixel", str(path)]
            shows = [
                functools.partial(_run, show_cmd, dict(env, PYTHONPATH=str(src.resolve())))
                for src in [SRC, *([args.baseline] if args.baseline else [])]
            ]

            timed = median_ms((ours, theirs, *shows), args.runs)
            (ours_ms, ours_out), (theirs_ms, theirs_out), (show_ms, show_out) = timed[:3]
            baseline = [f"{timed[3][0]:.1f}", f"{timed[3][0] / theirs_ms:.2f}"] if args.baseline else []
            errors = [mean_abs_error(out, image) for out in (ours_out, theirs_out)]
            rows.append(
                (
                    f"{name} {side}²",
                    f"{ours_ms:.1f}",
                    f"{theirs_ms:.1f}",
                    f"{ours_ms / theirs_ms:.2f}",
                    f"{show_ms:.1f}",
                    f"{show_ms / theirs_ms:.2f}",
                    decoded_size(show_out),
                    *baseline,
                    f"{len(ours_out):,}",
                    f"{len(theirs_out):,}",
                    *("-" if e is None else f"{e:.2f}" for e in errors),
                )
            )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print(" | ".join(str(cell).rjust(w) for cell, w in zip(row, widths, strict=True)))
    print("ratio = ours / img2sixel, show ratio = vchat show / img2sixel (below 1: ours is faster);")
    print("show px = size vchat show drew (img2sixel draws the file's own size); MAE = mean abs error after sixel2png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
