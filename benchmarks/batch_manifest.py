"""What the manifest's file policy costs a batch: this tree vs a baseline tree, side by side, interleaved.

    python benchmarks/batch_manifest.py --baseline /path/to/old/src [--images 400] [--repeat 3]

Small images and a model-free tool (flip_image), so the per-image overhead of the batch
itself (escaped manifest lines, confined output paths, the folder lock) is what the numbers
show, not a model. `run` is the batch's own time per image (its --json summary, after the
interpreter started); `resume` is the wall time of a `--resume` run that finds every image
done (reading and checking the whole manifest, plus start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_inputs(folder: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        sub = folder / f"f{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(sub / f"p{i:04d}.png")


def batch(src: Path, inputs: Path, out: Path, *extra: str) -> tuple[float, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCHAT_", "OPENAI_"))}
    env["PYTHONPATH"] = str(src)
    cmd = [sys.executable, "-m", "vchat", "batch", "--tool", "flip_image", str(inputs), "--out", str(out), "--json"]
    started = time.perf_counter()
    done = subprocess.run([*cmd, *extra], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"batch failed ({src}): {done.stderr.strip().splitlines()[-1:]}")
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the src folder of the tree to compare with")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trees = {"baseline": args.baseline.resolve(), "this tree": ROOT / "src"}
    work = Path(tempfile.mkdtemp(prefix="vchat-bench-manifest-"))
    try:
        make_inputs(work / "in", args.images)
        runs: dict[str, list[float]] = {name: [] for name in trees}
        resumes: dict[str, list[float]] = {name: [] for name in trees}
        for attempt in range(args.repeat):
            for name, src in trees.items():  # interleaved: drift on a shared machine hits both alike
                out = work / f"out-{name.replace(' ', '-')}-{attempt}"
                _, summary = batch(src, work / "in", out)
                seconds = summary["seconds"]
                assert isinstance(seconds, int | float)
                runs[name].append(seconds / args.images * 1000)
                wall, summary = batch(src, work / "in", out, "--resume")
                assert summary["skipped"] == args.images, summary
                resumes[name].append(wall * 1000)
        print(f"{args.images} images 64x48, flip_image, median of {args.repeat} (interleaved)")
        print(f"{'tree':<12} {'run ms/image':>13} {'resume wall ms':>15}")
        for name in trees:
            print(f"{name:<12} {statistics.median(runs[name]):>13.3f} {statistics.median(resumes[name]):>15.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
