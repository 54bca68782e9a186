"""FLUX.2 [klein] 4B: what it weighs per component and per phase, and what one 512 px call costs on this CPU.

    python benchmarks/klein.py                 # sizes only (meta device: no weights are made)
    python benchmarks/klein.py --cpu-time      # and CPU seconds, measured on full-width slices, extrapolated

Sizes: the published configurations built on the meta device (`vchat.runtime.klein_sizes`), next to the built-in
planner (Qwen3.5-2B, the accelerator default) built the same way. "phase" is what a klein call needs on the device
at once: the text encoder alone while the prompt is encoded, then the transformer and VAE (the encoder has left);
budgets compare weights only (activations come on top and were not measured: no GPU here).

CPU time: the whole 4B transformer and Qwen3-4B in bf16 (~16 GB) do not fit beside six other jobs in this machine's
24 GiB, so each is measured as full-width slices with random weights: the transformer with 0 blocks (embedders and
output layer), with 2 double-stream blocks and with 3 single-stream blocks; the text encoder with 1 and with 4 layers
(its 151,936-token output layer included, as the pipeline computes it); the VAE at full size. The differences give
one block's time; the full model's is then stem + 5 x double + 20 x single per step, and 36 encoder layers. Speed
does not depend on weight values. Totals are extrapolations from measured slices, and are labelled so in the table.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.zoo: the planner's shapes
sys.path.insert(0, str(ROOT / "src"))

GIB = 1 << 30
TEXT_TOKENS = 512  # klein pads every prompt to 512 tokens
DOUBLE, SINGLE, LAYERS = 5, 20, 36


def planner_bytes(dtype_bytes: int = 2) -> tuple[int, int]:
    """(parameters, bytes) of the built-in planner's accelerator default, Qwen3.5-2B, built on meta."""
    import torch
    from tests.zoo import planner_config, planner_tokenizer
    from transformers import Qwen3_5ForConditionalGeneration

    with torch.device("meta"):
        model = Qwen3_5ForConditionalGeneration(planner_config(planner_tokenizer(), "2b"))
    params = sum(p.numel() for p in model.parameters())
    return params, params * dtype_bytes


def size_table() -> None:
    from vchat.runtime.catalog import KLEIN_TEXT_ENCODER, KLEIN_TRANSFORMER, KLEIN_VAE
    from vchat.runtime.klein_sizes import component_sizes

    rows = {row.key: row for row in component_sizes("bfloat16")}
    print("FLUX.2 [klein] 4B, full-size configurations on the meta device (bf16 weights)")
    print(f"  {'component':<28} {'class':<26} {'parameters':>15} {'weights':>10}")
    for row in rows.values():
        print(f"  {row.key:<28} {row.cls:<26} {row.params:>15,} {row.nbytes / GIB:>8.2f} G")
    total = sum(r.nbytes for r in rows.values())
    print(f"  {'all three':<28} {'':<26} {sum(r.params for r in rows.values()):>15,} {total / GIB:>8.2f} G")
    planner_params, planner = planner_bytes()
    name = "Qwen3_5ForConditional…"
    print(f"  {'planner (Qwen3.5-2B)':<28} {name:<26} {planner_params:>15,} {planner / GIB:>8.2f} G")
    text = rows[KLEIN_TEXT_ENCODER].nbytes
    denoise = rows[KLEIN_TRANSFORMER].nbytes + rows[KLEIN_VAE].nbytes
    print()
    print("weights on the device per phase of one call (GiB), and whether they fit a budget (weights only)")
    print(f"  {'':<34} {'alone':>8} {'+planner':>9} {'16 GiB':>8} {'12 GiB':>8} {'12, planner off':>16}")
    for name, need in (("all at once (one pipeline)", total), ("text phase: encoder", text)):
        _budget_row(name, need, planner)
    _budget_row("denoise phase: transformer + VAE", denoise, planner)


def _budget_row(name: str, need: int, planner: int) -> None:
    def fits(n: int, budget: int) -> str:
        return "fits" if n <= budget * GIB else "no"

    with_planner = need + planner
    print(
        f"  {name:<34} {need / GIB:>8.2f} {with_planner / GIB:>9.2f} {fits(with_planner, 16):>8} "
        f"{fits(with_planner, 12):>8} {fits(need, 12):>16}"
    )


# "cpu": seconds of CPU this process used (all its threads), steadier than wall time on a machine shared with other
# jobs; "wall": elapsed seconds. The fastest of the repeats is kept (the others lost time to the other jobs).
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
CLOCK = ["cpu"]


def _time(fn: Any, repeats: int) -> float:
    import torch

    clock = CLOCKS[CLOCK[0]]
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            started = clock()
            fn()
            times.append(clock() - started)
    return min(times)


def transformer_times(dtype: Any, image_tokens: int, repeats: int) -> tuple[float, float, float]:
    """(stem, one double block, one single block) seconds for one denoising step's forward."""
    import torch

    from vchat.runtime.catalog import KLEIN_TRANSFORMER
    from vchat.runtime.klein_sizes import TRANSFORMER_4B, build

    def run(double: int, single: int) -> float:
        torch.manual_seed(0)
        model = build(KLEIN_TRANSFORMER, {"num_layers": double, "num_single_layers": single}, device="cpu")
        model = model.to(dtype).eval()
        hidden = torch.randn(1, image_tokens, TRANSFORMER_4B["in_channels"], dtype=dtype)
        text = torch.randn(1, TEXT_TOKENS, TRANSFORMER_4B["joint_attention_dim"], dtype=dtype)
        img_ids = torch.zeros(1, image_tokens, 4)
        txt_ids = torch.zeros(1, TEXT_TOKENS, 4)
        timestep = torch.tensor([0.5], dtype=dtype)

        def call() -> None:
            model(
                hidden_states=hidden,
                encoder_hidden_states=text,
                timestep=timestep,
                img_ids=img_ids,
                txt_ids=txt_ids,
                guidance=None,
                return_dict=False,
            )

        return _time(call, repeats)

    # Several blocks per slice, so one block's time is not lost in the noise of a shared machine.
    stem = run(0, 0)
    return stem, max(0.0, run(2, 0) - stem) / 2, max(0.0, run(0, 3) - stem) / 3


def encoder_times(dtype: Any, repeats: int) -> tuple[float, float]:
    """(one-layer model, each further layer) seconds for encoding a 512-token prompt."""
    import torch

    from vchat.runtime.catalog import KLEIN_TEXT_ENCODER
    from vchat.runtime.klein_sizes import build

    def run(layers: int) -> float:
        torch.manual_seed(0)
        model = build(KLEIN_TEXT_ENCODER, {"num_hidden_layers": layers}, device="cpu").to(dtype).eval()
        ids = torch.randint(0, 151936, (1, TEXT_TOKENS))
        mask = torch.ones_like(ids)
        return _time(lambda: model(input_ids=ids, attention_mask=mask, output_hidden_states=True), repeats)

    one = run(1)
    return one, max(0.0, run(4) - one) / 3


def vae_times(dtype: Any, side: int, repeats: int) -> tuple[float, float]:
    """(encode one image, decode one latent) seconds at `side` px with the full-size VAE."""
    import torch

    from vchat.runtime.catalog import KLEIN_VAE
    from vchat.runtime.klein_sizes import build

    torch.manual_seed(0)
    vae = build(KLEIN_VAE, device="cpu").to(dtype).eval()
    image = torch.randn(1, 3, side, side, dtype=dtype)
    latent = torch.randn(1, 32, side // 8, side // 8, dtype=dtype)
    return _time(lambda: vae.encode(image), repeats), _time(lambda: vae.decode(latent), repeats)


def time_table(dtypes: list[str], side: int, repeats: int, steps: int) -> None:
    import torch

    tokens = (side // 16) ** 2
    print()
    threads = torch.get_num_threads()
    print(f"{CLOCK[0]} seconds at {side} px, {steps} steps, {threads} threads (measured slices; totals extrapolated:")
    print(f"stem + {DOUBLE} double + {SINGLE} single blocks per step, {LAYERS} encoder layers)")
    header = f"  {'':<44}" + "".join(f"{d:>12}" for d in dtypes)
    print(header)
    results: dict[str, dict[str, float]] = {}
    for name in dtypes:
        dtype = getattr(torch, name)
        stem, double, single = transformer_times(dtype, tokens, repeats)
        _, double_ref, single_ref = transformer_times(dtype, 2 * tokens, repeats)
        stem_ref = stem  # the stem's cost barely depends on the sequence length next to the blocks'
        first, per_layer = encoder_times(dtype, repeats)
        encode, decode = vae_times(dtype, side, repeats)
        step = stem + DOUBLE * double + SINGLE * single
        step_ref = stem_ref + DOUBLE * double_ref + SINGLE * single_ref
        text = first + (LAYERS - 1) * per_layer
        results[name] = {
            "measured: transformer stem (0 blocks)": stem,
            "measured: one double-stream block": double,
            "measured: one single-stream block": single,
            "measured: encoder, 1 layer + output layer": first,
            "measured: one more encoder layer": per_layer,
            "measured: VAE encode (one image)": encode,
            "measured: VAE decode": decode,
            "extrapolated: one denoising step": step,
            "extrapolated: one step, edit + 1 reference": step_ref,
            "extrapolated: prompt encoding (36 layers)": text,
            "extrapolated: generate_image, one call": text + steps * step + decode,
            "extrapolated: instruct_edit + 1 reference": text + 2 * encode + steps * step_ref + decode,
        }
    for row in results[dtypes[0]]:
        print(f"  {row:<44}" + "".join(f"{results[d][row]:>12.2f}" for d in dtypes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-time", action="store_true", help="also time full-width slices on CPU")
    parser.add_argument("--dtype", action="append", choices=("bfloat16", "float32"), help="repeatable")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (multiple of 16)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="cpu", help="cpu: process CPU seconds; wall")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from diffusers.utils import logging as diffusers_logging

    # Casting a freshly built model with .to(dtype) logs a notice per build; the measurement is unaffected.
    diffusers_logging.set_verbosity_error()
    CLOCK[0] = args.clock
    size_table()
    if args.cpu_time:
        time_table(args.dtype or ["bfloat16"], args.size, args.repeats, args.steps)


if __name__ == "__main__":
    main()
