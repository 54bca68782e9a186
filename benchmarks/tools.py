"""Generation tools: a vchat tool call next to calling the diffusers pipeline directly, same tiny models, same run.

    python benchmarks/tools.py                       # CPU (or CUDA when present), 256 px, 20 steps
    python benchmarks/tools.py --size 512 --steps 30 --repeats 7

Both sides use the tests' tiny random-weight models (tests/zoo.py) on the same device and dtype, the same scheduler,
size, steps and seed. "direct" is the diffusers pipeline call a script would make (inputs already in memory);
"direct+save" adds writing the PNG, which a script needs to leave the same artefact. The vchat column is the whole
tool call through `Session.run_tool`: binding, loading the input from disk, the manager lookup, per-step progress,
the safety decision and the atomic PNG write with its lineage chunk and transcript record. Calls alternate between
the two sides so that drift in the machine's speed hits both; medians are compared. Goal: vchat/direct+save <= 1.05.
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
    parser.add_argument("--repeats", type=int, default=5)
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
    from vchat.tools.controlnet import QUALITY_NEGATIVE, QUALITY_SUFFIX
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
        common = {"num_inference_steps": steps, "guidance_scale": 7.5, "output_type": "pil"}
        saved = folder / "direct.png"

        def direct(kind: str, **kwargs: Any) -> Callable[[], Any]:
            def call() -> Any:
                generator = torch.Generator("cpu").manual_seed(7)
                return pipes[kind](generator=generator, **common, **kwargs).images[0]

            return call

        def vchat(tool: str, **named: Any) -> Callable[[], Any]:
            return lambda: session.run_tool(tool, named={**named, "steps": steps, "seed": 7})

        cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
            (
                "generate_image",
                direct("text2img", prompt="a red car", width=size, height=size),
                vchat("generate_image", prompt="a red car", width=size, height=size),
            ),
            (
                "instruct_edit",
                direct("pix2pix", prompt="make it winter", image=photo, image_guidance_scale=1.5),
                vchat("instruct_edit", image="img1", instruction="make it winter"),
            ),
            (
                "generate_from_canny",
                direct(
                    "controlnet",
                    prompt=f"a house, {QUALITY_SUFFIX}",
                    negative_prompt=QUALITY_NEGATIVE,
                    image=edges,
                    width=size,
                    height=size,
                ),
                vchat("generate_from_canny", image="img2", prompt="a house", guidance=7.5),
            ),
            (
                "extend_image",
                direct("inpaint", prompt="a field", image=canvas, mask_image=mask, width=size, height=size),
                vchat("extend_image", image="img3", factor=2, prompt="a field"),
            ),
        ]
        rows = []
        for name, plain, tool in cases:
            plain_times, saved_times, tool_times = [], [], []
            step = tool()  # warm-up: loads weights, builds the view, fills caches
            if not step.images:
                raise SystemExit(f"{name} failed: {step.observation}")
            plain()
            for _ in range(args.repeats):
                plain_times.append(timed(plain, device))
                saved_times.append(timed(lambda p=plain: p().save(saved), device))  # type: ignore[misc]
                tool_times.append(timed(tool, device))
            p, s, t = (statistics.median(x) for x in (plain_times, saved_times, tool_times))
            rows.append((name, p, s, t))

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"\nvchat tool call vs direct diffusers call: {size}x{size}, {steps} steps, median of {args.repeats}, {gpu}")
    columns = ("direct s", 9), ("direct+save s", 14), ("vchat s", 9), ("vchat/direct+save", 18), ("vchat/direct", 13)
    header = f"{'tool':<22} " + " ".join(f"{title:>{width}}" for title, width in columns)
    print(header)
    print("-" * len(header))
    for name, p, s, t in rows:
        print(f"{name:<22} {p:>9.4f} {s:>14.4f} {t:>9.4f} {t / s:>17.3f}x {t / p:>12.3f}x")


if __name__ == "__main__":
    main()
