"""FLUX.2 [klein] 4B on a GPU through vchat's own runtime: peak memory and seconds per call under memory budgets.

    python benchmarks/klein_gpu.py               # on a CUDA machine: full size, random bf16 weights (~16 GB on disk)
    python benchmarks/klein_gpu.py --smoke       # tiny configurations on CPU: checks that the script runs

A full-size checkpoint with random weights (speed and memory do not depend on weight values) is written once to
--folder in the published layout and loaded by the ModelManager through `[models] flux2_klein = FOLDER`, exactly as
a downloaded one. Each row is one call (generate_image's 512 px text-to-image, then instruct_edit with one reference)
under a budget: unlimited; 16 GiB with a 4.1 GiB block held beside it (the size of the 2B planner's bf16 weights);
12 GiB with the planner moved off. Columns: wall seconds, the device's peak allocated memory during the call
(torch.cuda.max_memory_allocated, weights and activations), and how the manager placed the parts. Not run by the
author: no GPU was lent to this work.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.klein_zoo: the small offline tokenizer and the tiny configurations
sys.path.insert(0, str(ROOT / "src"))

GIB = 1 << 30
PLANNER_BYTES = int(4.12 * GIB)  # Qwen3.5-2B in bf16 (benchmarks/klein.py counts it on the meta device)


def write_checkpoint(folder: Path, smoke: bool) -> Path:
    """A klein checkpoint folder with random weights: full size, or the tests' tiny one with --smoke."""
    import torch

    if (folder / "model_index.json").is_file():
        return folder
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline
    from tests import klein_zoo

    if smoke:
        klein_zoo.pipeline().save_pretrained(folder)
        return folder
    from vchat.runtime.catalog import KLEIN_TEXT_ENCODER, KLEIN_TRANSFORMER, KLEIN_VAE
    from vchat.runtime.klein_sizes import build

    parts: dict[str, Any] = {}
    for name, key in (("transformer", KLEIN_TRANSFORMER), ("text_encoder", KLEIN_TEXT_ENCODER), ("vae", KLEIN_VAE)):
        # Built on meta, then given bf16 storage and small random values: no fp32 copy of 8 GB is ever made.
        module = build(key).to_empty(device="cpu").to(torch.bfloat16)
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                if tensor.is_floating_point():
                    tensor.normal_(0.0, 0.02)
        if name == "vae":
            module.bn.running_var.fill_(1.0)  # a variance, so it must be positive
        parts[name] = module
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True)
    pipeline = Flux2KleinPipeline(scheduler=scheduler, tokenizer=klein_zoo.tokenizer(), is_distilled=True, **parts)
    pipeline.save_pretrained(folder)
    return folder


def one_call(manager: Any, tool: str, side: int, steps: int) -> Any:
    """One klein call as the tool makes it (the same view, sizes and steps)."""
    import torch
    from PIL import Image

    from vchat.runtime.klein import klein_pipeline

    view = klein_pipeline(manager, "edit", tool=tool)
    kwargs: dict[str, Any] = {"width": side, "height": side, "num_inference_steps": steps, "output_type": "pil"}
    if tool == "instruct_edit":
        kwargs["image"] = [Image.new("RGB", (side, side), (120, 90, 60)), Image.new("RGB", (side, side), (20, 40, 200))]
    view(prompt="a red car on a sofa", generator=torch.Generator().manual_seed(0), **kwargs)
    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configurations on CPU (checks the script)")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "vchat-klein-random")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch
    from diffusers.utils import logging as diffusers_logging

    from vchat.runtime import ModelManager

    diffusers_logging.set_verbosity_error()
    cuda = torch.cuda.is_available() and not args.smoke
    device = "cuda" if cuda else "cpu"
    folder = args.folder.with_name(args.folder.name + ("-smoke" if args.smoke else ""))
    started = time.perf_counter()
    write_checkpoint(folder, args.smoke)
    print(f"checkpoint {folder} ready in {time.perf_counter() - started:.0f} s; device {device}")
    budgets: list[tuple[str, int | None, int]] = [("unlimited", None, 0)]
    if cuda:
        budgets += [("16 GiB, planner resident", 16 * GIB, PLANNER_BYTES), ("12 GiB, planner moved off", 12 * GIB, 0)]
    print(f"  {'budget':<28} {'tool':<16} {'seconds':>8} {'peak GiB':>9}  placement")
    for label, budget, ballast_bytes in budgets:
        manager = ModelManager(
            {"flux2_klein": str(folder)}, device=device, dtype="auto", vram_budget=budget and budget - ballast_bytes
        )
        ballast = torch.empty(ballast_bytes, dtype=torch.uint8, device=device) if ballast_bytes else None
        for tool in ("generate_image", "instruct_edit"):
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            begun = time.perf_counter()
            view = one_call(manager, tool, args.size if not args.smoke else 64, args.steps)
            if cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - begun
            peak = f"{torch.cuda.max_memory_allocated() / GIB:9.2f}" if cuda else f"{'n/a':>9}"
            print(f"  {label:<28} {tool:<16} {seconds:>8.1f} {peak}  {view.degraded or 'resident'}")
        del ballast
        manager.clear()


if __name__ == "__main__":
    main()
