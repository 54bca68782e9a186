"""Generation tools: a vchat tool call next to calling the diffusers pipeline directly, same tiny models, same run.

    python benchmarks/tools.py                       # CPU (or CUDA when present), 256 px, 20 steps
    python benchmarks/tools.py --size 512 --steps 30 --repeats 7

Both sides use the tests' tiny random-weight models (tests/zoo.py) on the same device and dtype, the same scheduler,
size, steps and seed. "direct" is the bare diffusers pipeline call on inputs already in memory; "direct+io" is what
a script does for the same result: read the input PNG(s), call the pipeline, write the output PNG. The vchat column
is the whole tool call through `Session.run_tool`: binding, loading and validating the input, fitting its size, the
manager lookup, per-step progress, the safety decision, the tool's own pre/post-processing (map recognition,
compositing) and the atomic PNG write with its lineage chunk and transcript record (zlib level 6, like Pillow's
save on the other side; its disk sync runs in the background, as in every session). Calls alternate between
the sides so that drift in the machine's speed hits all; medians are compared. Goal: vchat/direct+io <= 1.05.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.zoo: the tiny models
sys.path.insert(0, str(ROOT / "src"))


def sync(device: str) -> None:
    """Wait for queued GPU work so that timings are honest."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> float:
    """Seconds one call takes, GPU work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def direct_pipelines(local: Path, device: str, dtype: Any) -> dict[str, Any]:
    """Each diffusers pipeline the benchmarked tools use, loaded straight from the zoo's folders."""
    import diffusers
    from diffusers import ControlNetModel

    common = {"safety_checker": None, "requires_safety_checker": False, "dtype": dtype}
    pipes = {
        "text2img": diffusers.StableDiffusionPipeline.from_pretrained(local / "sd15", **common),
        "pix2pix": diffusers.StableDiffusionInstructPix2PixPipeline.from_pretrained(local / "pix2pix", **common),
        "inpaint": diffusers.StableDiffusionInpaintPipeline.from_pretrained(local / "sd15_inpaint", **common),
        "controlnet": diffusers.StableDiffusionControlNetPipeline.from_pretrained(
            local / "sd15",
            controlnet=ControlNetModel.from_pretrained(local / "controlnet_canny", dtype=dtype),
            **common,
        ),
    }
    # The schedulers vchat's views use (vchat.runtime.pipelines.VIEWS).
    pipes["pix2pix"].scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(
        pipes["pix2pix"].scheduler.config
    )
    pipes["controlnet"].scheduler = diffusers.UniPCMultistepScheduler.from_config(pipes["controlnet"].scheduler.config)
    for pipe in pipes.values():
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
    return pipes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 avoids oversubscription)")
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    from tests.zoo import zoo_root

    root = zoo_root()
    os.environ["HF_HUB_CACHE"] = str(root / "hub")
    os.environ["HF_HUB_OFFLINE"] = "1"

    import numpy as np
    import torch
    from PIL import Image

    from vchat.config import Settings
    from vchat.runtime import ModelManager
    from vchat.session import Session
    from vchat.tools.generation.controlnet import QUALITY_NEGATIVE, QUALITY_SUFFIX
    from vchat.tools.registry import all_tools

    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    size, steps = args.size, args.steps
    pipes = direct_pipelines(root / "local", device, dtype)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(out_dir=folder / "out")
        settings.sd_max_side = size  # type: ignore[attr-defined]
        settings.safety_checker = "off"  # type: ignore[attr-defined]
        session = Session(settings, all_tools(), models=ModelManager(device="auto"))
        rng = np.random.default_rng(0)
        photo = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), "RGB")
        edges = Image.new("RGB", (size, size))
        edges.paste((255, 255, 255), (size // 4, size // 4, 3 * size // 4, size // 4 + 2))
        photo.save(folder / "photo.png")
        edges.save(folder / "edges.png")
        session.attach(folder / "photo.png")  # img1
        session.attach(folder / "edges.png")  # img2
        canvas = Image.new("RGB", (size, size), (127, 127, 127))
        canvas.paste(photo.resize((size // 2, size // 2)), (size // 4, size // 4))
        mask = Image.new("L", (size, size), 255)
        mask.paste(0, (size // 4 + 8, size // 4 + 8, 3 * size // 4 - 8, 3 * size // 4 - 8))
        half = Image.fromarray(np.asarray(photo)[::2, ::2].copy(), "RGB")
        half.save(folder / "half.png")
        session.attach(folder / "half.png")  # img3, extended 2x back to size x size
        canvas.save(folder / "canvas.png")
        mask.save(folder / "mask.png")
        common = {"num_inference_steps": steps, "guidance_scale": 7.5, "output_type": "pil"}
        saved = folder / "direct.png"

        def direct(kind: str, files: dict[str, str], **kwargs: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
            """(the bare pipeline call on images in memory, the same reading its inputs and writing its PNG)."""
            loaded = {
                name: Image.open(folder / file).convert("L" if name == "mask_image" else "RGB")
                for name, file in files.items()
            }

            def call(images: dict[str, Any]) -> Any:
                generator = torch.Generator("cpu").manual_seed(7)
                return pipes[kind](generator=generator, **common, **images, **kwargs).images[0]

            def with_io() -> None:
                images = {
                    name: Image.open(folder / file).convert("L" if name == "mask_image" else "RGB")
                    for name, file in files.items()
                }
                call(images).save(saved)

            return (lambda: call(loaded)), with_io

        def vchat(tool: str, **named: Any) -> Callable[[], Any]:
            return lambda: session.run_tool(tool, named={**named, "steps": steps, "seed": 7})

        cases: list[tuple[str, tuple[Callable[[], Any], Callable[[], Any]], Callable[[], Any]]] = [
            (
                "generate_image",
                direct("text2img", {}, prompt="a red car", width=size, height=size),
                vchat("generate_image", prompt="a red car", width=size, height=size),
            ),
            (
                "instruct_edit",
                direct("pix2pix", {"image": "photo.png"}, prompt="make it winter", image_guidance_scale=1.5),
                vchat("instruct_edit", image="img1", instruction="make it winter"),
            ),
            (
                "generate_from_canny",
                direct(
                    "controlnet",
                    {"image": "edges.png"},
                    prompt=f"a house, {QUALITY_SUFFIX}",
                    negative_prompt=QUALITY_NEGATIVE,
                    width=size,
                    height=size,
                ),
                vchat("generate_from_canny", image="img2", prompt="a house", guidance=7.5),
            ),
            (
                "extend_image",
                direct(
                    "inpaint",
                    {"image": "canvas.png", "mask_image": "mask.png"},
                    prompt="a field",
                    width=size,
                    height=size,
                ),
                vchat("extend_image", image="img3", factor=2, prompt="a field"),
            ),
        ]
        rows = []
        for name, (plain, with_io), tool in cases:
            plain_times, io_times, tool_times = [], [], []
            step = tool()  # warm-up: loads weights, builds the view, fills caches
            if not step.images:
                raise SystemExit(f"{name} failed: {step.observation}")
            with_io()
            for _ in range(args.repeats):
                plain_times.append(timed(plain, device))
                io_times.append(timed(with_io, device))
                tool_times.append(timed(tool, device))
            p, s, t = (statistics.median(x) for x in (plain_times, io_times, tool_times))
            rows.append((name, p, s, t))

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"\nvchat tool call vs direct diffusers call: {size}x{size}, {steps} steps, median of {args.repeats}, {gpu}")
    columns = ("direct s", 9), ("direct+io s", 12), ("vchat s", 9), ("vchat/direct+io", 16), ("vchat/direct", 13)
    header = f"{'tool':<22} " + " ".join(f"{title:>{width}}" for title, width in columns)
    print(header)
    print("-" * len(header))
    for name, p, s, t in rows:
        print(f"{name:<22} {p:>9.4f} {s:>12.4f} {t:>9.4f} {t / s:>15.3f}x {t / p:>12.3f}x")


if __name__ == "__main__":
    main()
