"""Many images, one edit: a plain cv2 loop vs `vchat batch` (local and --ray) vs a shell loop of `vchat run --tool`.

    python benchmarks/batch.py [--images 200] [--shell-images 20] [--diffusion-images 12] [--baseline SRC]

Inputs: real photos shipped with scikit-image, cropped, flipped, rotated and tinted into
different 512x512 JPEGs (two folders, so equal names in different folders are exercised).
Every row does the same work per image: read, Canny edges (100/200), write a PNG. Times
per image are the batch's own (from its --json summary, after the interpreter started);
the wall column adds process start-up (and, for --ray, starting the actors). The slow
shell loop runs on the first --shell-images photos and is extrapolated per image.
The diffusion section runs instruct_edit on the tests' tiny random-weight models
(tests/zoo.py, offline): one `vchat batch` vs one `vchat run --tool` process per image.
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

import numpy as np

REPEAT = 3
ROOT = Path(__file__).resolve().parent.parent
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "moon",
    "page",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "text",
    "brick",
    "grass",
    "gravel",
    "colorwheel",
    "clock",
    "horse",
)


def make_photos(folder: Path, count: int, side: int = 512) -> list[Path]:
    from PIL import Image, ImageEnhance
    from skimage import data

    sources = []
    for name in PHOTOS:
        try:
            arr = getattr(data, name)()
        except Exception:  # some need a download: skip them (no network here)
            continue
        image = Image.fromarray(np.asarray(arr if arr.dtype == np.uint8 else (arr * 255).astype(np.uint8)))
        sources.append(image.convert("RGB"))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        image = sources[i % len(sources)]
        w, h = image.size
        crop = int(min(w, h) * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - crop + 1)), int(rng.integers(0, h - crop + 1))
        varied = image.crop((x, y, x + crop, y + crop)).resize((side, side), Image.Resampling.LANCZOS)
        if rng.random() < 0.5:
            varied = varied.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        varied = varied.rotate(float(rng.choice([0, 90, 180, 270])))
        varied = ImageEnhance.Brightness(varied).enhance(float(rng.uniform(0.7, 1.3)))
        path = folder / ("set-a" if i % 2 else "set-b") / f"photo{i // 2:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        varied.save(path, quality=92)
        paths.append(path)
    return paths


def cv2_loop(paths: list[Path], out: Path) -> float:
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for i, path in enumerate(paths):
        image = cv2.imread(str(path))
        edges = cv2.Canny(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 100, 200)
        cv2.imwrite(str(out / f"{i:04d}-{path.stem}.png"), edges)
    return time.perf_counter() - started


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def vchat_batch(args: list[str], env: dict[str, str] | None = None) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "vchat", "batch", *args, "--json"], capture_output=True, text=True, env=_env(env)
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"vchat batch failed ({proc.returncode}): {proc.stderr.strip()}")
    return wall, json.loads(proc.stdout)


def shell_loop(paths: list[Path], out: Path, tool_args: list[str], env: dict[str, str] | None = None) -> float:
    script = "\n".join(
        f"python -m vchat run --tool {' '.join(tool_args)} -i '{p}' -o '{out}' > /dev/null || exit 1" for p in paths
    )
    started = time.perf_counter()
    proc = subprocess.run(
        ["bash", "-c", script],
        env=_env({**(env or {}), "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"shell loop failed: {proc.stderr.strip()[-400:]}")
    return time.perf_counter() - started


def start_ray(cpus: int) -> str:
    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024 * 1024)
    return str(ray.get_runtime_context().gcs_address)


def kib(folder: Path | None, pattern: str = "*.png") -> str:
    """Mean size of the PNGs a method wrote (the PNG encoding's side of the trade)."""
    sizes = [p.stat().st_size for p in folder.rglob(pattern)] if folder is not None else []
    return f"{sum(sizes) / len(sizes) / 1024:6.1f}" if sizes else "     -"


def row(
    name: str,
    images: int,
    seconds: float,
    wall: float | None,
    base: float,
    note: str = "",
    out: Path | None = None,
    pattern: str = "*.png",
) -> str:
    per = seconds / images
    wall_text = f"{wall:8.2f}" if wall is not None else "       -"
    rate = images / seconds
    return (
        f"| {name:<44} | {images:>6} | {wall_text} | {rate:9.1f} | {per * 1000:9.1f} | {per / base:7.2f}x "
        f"| {kib(out, pattern)} | {note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--shell-images", type=int, default=20)
    parser.add_argument("--diffusion-images", type=int, default=4)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also time `vchat batch` from another checkout's src/ (e.g. `git archive COMMIT src | tar -x -C DIR`) "
        "in the same runs, for a before/after under the same load",
    )
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vchat-bench-batch-"))
    try:
        paths = make_photos(work / "in", opts.images)
        head = "| method | images | wall s | images/s | ms/image | vs cv2 | KiB/PNG | note"
        print(f"{opts.images} photos, 512x512 JPEG; canny_edges 100/200 -> PNG; {os.cpu_count()} CPUs\n")
        print(head)
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        # This machine is shared: the two main rows run interleaved, REPEAT times each, and report their medians.
        bases, batches, walls, smalls, baselines = [], [], [], [], []
        small = paths[:20]
        for attempt in range(REPEAT):
            bases.append(cv2_loop(paths, work / f"cv2-{attempt}"))
            wall, summary = vchat_batch(
                ["--tool", "canny_edges", str(work / "in"), "--out", str(work / f"batch-{attempt}")]
            )
            batches.append(float(summary["seconds"]))  # type: ignore[arg-type]
            walls.append(wall)
            # The same on 20 photos: the difference is the cost of 180 more images without the fixed costs
            # (creating the tools, importing OpenCV on the first image) that the cv2 loop does not count.
            _, summary = vchat_batch(["--tool", "canny_edges", *map(str, small), "--out", str(work / f"s-{attempt}")])
            smalls.append(float(summary["seconds"]))  # type: ignore[arg-type]
            if opts.baseline:
                _, summary = vchat_batch(
                    ["--tool", "canny_edges", str(work / "in"), "--out", str(work / f"baseline-{attempt}")],
                    {"PYTHONPATH": str(Path(opts.baseline).resolve())},
                )
                baselines.append(float(summary["seconds"]))  # type: ignore[arg-type]
        base_seconds = statistics.median(bases)
        base = base_seconds / len(paths)
        print(
            row(
                "plain cv2 loop, in-process (read, Canny, write)",
                len(paths),
                base_seconds,
                None,
                base,
                f"median of {REPEAT}",
                work / "cv2-0",
            ),
            flush=True,
        )
        print(
            row(
                "vchat batch --tool canny_edges",
                len(paths),
                statistics.median(batches),
                statistics.median(walls),
                base,
                f"median of {REPEAT}; time after start-up, wall includes it",
                work / "batch-0",
            ),
            flush=True,
        )
        if baselines:
            print(
                row(
                    "vchat batch, baseline (--baseline SRC)",
                    len(paths),
                    statistics.median(baselines),
                    None,
                    base,
                    f"median of {REPEAT}; the same photos from {opts.baseline}",
                    work / "baseline-0",
                ),
                flush=True,
            )
        marginal = statistics.median(b - m for b, m in zip(batches, smalls, strict=True))
        print(
            row(
                "vchat batch, marginal: 200 minus 20 photos",
                len(paths) - len(small),
                marginal,
                None,
                base,
                f"median of {REPEAT}; per image, fixed costs excluded",
            ),
            flush=True,
        )
        if not opts.no_ray:
            import ray

            address = start_ray(2)
            try:
                wall, summary = vchat_batch(
                    [
                        "--tool",
                        "canny_edges",
                        str(work / "in"),
                        "--out",
                        str(work / "ray"),
                        "--ray",
                        address,
                        "--workers",
                        "2",
                    ]
                )
            finally:
                ray.shutdown()
            print(
                row(
                    "vchat batch --ray (local cluster, 2 workers)",
                    len(paths),
                    float(summary["seconds"]),
                    wall,  # type: ignore[arg-type]
                    base,
                    "includes starting the 2 actors",
                    work / "ray",
                ),
                flush=True,
            )
        few = paths[: opts.shell_images]
        seconds = shell_loop(few, work / "shell", ["canny_edges"])
        print(
            row(
                "shell loop of vchat run --tool canny_edges",
                len(few),
                seconds,
                seconds,
                base,
                f"first {len(few)} photos, per image extrapolated",
                work / "shell",
                "*-canny_edges.png",  # not the attached copies in each session
            ),
            flush=True,
        )
        if opts.diffusion_images > 0:
            diffusion(work, opts.diffusion_images)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def diffusion(work: Path, count: int) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.zoo import zoo_root

    zoo = zoo_root()
    env = {"HF_HUB_CACHE": str(zoo / "hub"), "HF_HUB_OFFLINE": "1", "VCHAT_LLM": "none"}
    paths = make_photos(work / "tiny", count, side=64)
    args = ["--arg", "instruction=make it winter", "--arg", "steps=2", "--arg", "seed=1"]
    print(f"\ninstruct_edit on tiny random-weight models (tests/zoo.py), {count} photos at 64x64, 2 steps, CPU\n")
    print("| method | images | wall s | images/s | ms/image | vs batch |")
    print("|---|---:|---:|---:|---:|---:|")
    wall, _ = vchat_batch(["--tool", "instruct_edit", str(work / "tiny"), "--out", str(work / "d-batch"), *args], env)
    batch_per = wall / count
    print(
        f"| vchat batch --tool instruct_edit (models loaded once) | {count:>6} | {wall:8.2f} | {count / wall:9.2f} | "
        f"{batch_per * 1000:9.1f} | {1:7.2f}x |",
        flush=True,
    )
    seconds = shell_loop(
        paths,
        work / "d-shell",
        ["instruct_edit", *(a.replace("=", "='", 1) + "'" if "=" in a else a for a in args)],
        env,
    )
    per = seconds / count
    print(
        f"| shell loop of vchat run --tool instruct_edit | {count:>6} | {seconds:8.2f} | {count / seconds:9.2f} | "
        f"{per * 1000:9.1f} | {per / batch_per:7.2f}x |",
        flush=True,
    )


if __name__ == "__main__":
    main()
