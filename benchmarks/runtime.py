"""Model runtime benchmark: resident-call overhead, weight bytes with sharing, and the tool set under a 6 GB GPU budget.

    python benchmarks/runtime.py          # (a) on tiny models (CPU), (b) from full-size configs on the meta device
    python benchmarks/runtime.py --gpu    # also (c) on CUDA: every tool twice under a 6 GB cap; (a) at full size

No downloads: tiny models come from tests/zoo.py, full-size architectures from benchmarks/configs/*.json with random
weights. (c) writes the random-weight models to a temp folder (~10 GB) and loads them through the real
from_pretrained path, so loads, evictions and swaps are what users get.
"""

from __future__ import annotations

import argparse
import json
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
CONFIGS = Path(__file__).resolve().parent / "configs"
sys.path.insert(0, str(ROOT))  # tests.zoo (tiny models, a code-built tokenizer)
sys.path.insert(0, str(ROOT / "src"))

GIB = 2**30
CONTROLNET_KINDS = ("canny", "mlsd", "hed", "scribble", "openpose", "seg", "depth", "normal")
SD = ("sd15.unet", "sd15.text_encoder", "sd15.vae")
INPAINT = ("sd15_inpaint.unet", "sd15.text_encoder", "sd15.vae")


def _tools() -> dict[str, tuple[str, ...]]:
    """Each shipped tool and the weighted components it declares (from the registry, so it cannot drift)."""
    from vchat.runtime.catalog import COMPONENTS
    from vchat.tools.registry import TOOL_CLASSES

    found: dict[str, tuple[str, ...]] = {}
    for cls in TOOL_CLASSES:
        keys = tuple(k for k in cls.components if COMPONENTS[k].weighted)
        if keys:
            found[cls.name] = keys
    return found


# Visual ChatGPT built one full pipeline per tool: every tool below would hold its own copy of each component.
TOOLS: dict[str, tuple[str, ...]] = _tools()


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Print a plain aligned table."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.1f} MB"


# ----- full-size architectures from the configs in the repo --------------------------------------------------------


def build(key: str) -> Any:
    """A full-size module for a component key, random weights, on the current default torch device."""
    import diffusers
    import transformers

    if key.startswith("annotators."):
        return _annotator(key.split(".", 1)[1])
    if key.startswith("controlnet_"):
        name = "controlnet"
    elif key.endswith(".unet"):
        name = "unet"
    else:
        name = key.removeprefix("sd15.")
    config = json.loads((CONFIGS / f"{name}.json").read_text())
    if "_class_name" in config:
        if key == "sd15_inpaint.unet":
            config["in_channels"] = 9  # image latents + mask + masked-image latents
        elif key == "pix2pix.unet":
            config["in_channels"] = 8  # latents + image latents
        return getattr(diffusers, config["_class_name"]).from_config(config)
    arch = config.pop("architectures")[0]
    return getattr(transformers, arch)(transformers.AutoConfig.for_model(**config))


def _annotator(name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from controlnet_aux.hed import ControlNetHED_Apache2
        from controlnet_aux.mlsd.models.mbv2_mlsd_large import MobileV2_MLSD_Large
        from controlnet_aux.open_pose.face import FaceNet
        from controlnet_aux.open_pose.model import bodypose_model, handpose_model
    import torch

    if name == "hed":
        return ControlNetHED_Apache2()
    if name == "mlsd":
        return MobileV2_MLSD_Large()
    return torch.nn.ModuleDict({"body": bodypose_model(), "hand": handpose_model(), "face": FaceNet()})


def part_b() -> dict[str, int]:
    """(b) distinct weight bytes with sharing vs one full pipeline per tool (fp16, like Visual ChatGPT on CUDA)."""
    import torch

    from vchat.runtime.memory import module_params

    keys = sorted({k for keys in TOOLS.values() for k in keys})
    params: dict[str, int] = {}
    with torch.device("meta"):
        for key in keys:
            params[key] = module_params(build(key))
    size = {k: 2 * n for k, n in params.items()}  # fp16; the annotators (fp32 in practice) counted alike on both sides
    rows = [[k, f"{params[k] / 1e6:,.1f} M", mb(size[k]), sum(k in v for v in TOOLS.values())] for k in keys]
    table(
        "(b) components (full-size architectures, random weights on the meta device)",
        ["component", "params", "fp16 bytes", "tools using it"],
        rows,
    )
    per_tool = sum(size[k] for keys in TOOLS.values() for k in keys)
    shared = sum(size[k] for k in keys)
    sd_tools = [t for t, v in TOOLS.items() if "sd15.text_encoder" in v]
    per_tool_sd = sum(size[k] for t in sd_tools for k in TOOLS[t])
    shared_sd = sum(size[k] for k in {k for t in sd_tools for k in TOOLS[t]})
    table(
        f"(b) whole default tool set ({len(TOOLS)} tools with models; canny and the image transforms need none)",
        ["", "one pipeline per tool", "vchat (shared components)", "vchat / per-tool"],
        [
            ["all tools", mb(per_tool), mb(shared), f"{shared / per_tool:.1%}"],
            [f"the {len(sd_tools)} SD tools", mb(per_tool_sd), mb(shared_sd), f"{shared_sd / per_tool_sd:.1%}"],
        ],
    )
    return size


# ----- (a) second call to a resident tool -------------------------------------------------------------------------


def part_a(manager: Any, label: str, call_kwargs: Callable[[], dict[str, Any]], repeats: int) -> None:
    """Time a resident ControlNet tool through the manager against the bound pipeline called directly."""
    view = manager.sd_pipeline("controlnet", controlnet="controlnet_canny", tool="generate_from_canny")
    sync = manager._backend.synchronize

    before = manager.stats.copy()
    started = time.perf_counter()
    view(**call_kwargs())
    sync(manager.device)
    first_ms = (time.perf_counter() - started) * 1000
    first = manager.stats.since(before)
    with view.open() as pipe:
        pass
    direct, managed = [], []
    before = manager.stats.copy()
    for _ in range(repeats):  # interleaved, so drift hits both alike
        kwargs = call_kwargs()
        started = time.perf_counter()
        pipe(**kwargs)
        sync(manager.device)
        direct.append((time.perf_counter() - started) * 1000)
        kwargs = call_kwargs()
        started = time.perf_counter()
        view(**kwargs)
        sync(manager.device)
        managed.append((time.perf_counter() - started) * 1000)
    second = manager.stats.since(before)
    overhead = []
    for _ in range(500):
        started = time.perf_counter()
        with view.open():
            pass
        overhead.append((time.perf_counter() - started) * 1e6)
    table(
        f"(a) second call to a resident tool (generate_from_canny, {label}; median of {repeats})",
        ["", "first call", "later calls via manager", "pipeline called directly"],
        [
            [
                "wall time",
                f"{first_ms:,.1f} ms",
                f"{statistics.median(managed):,.2f} ms",
                f"{statistics.median(direct):,.2f} ms",
            ],
            ["bytes moved", mb(first.bytes_moved), mb(second.bytes_moved), "-"],
            ["loads / misses", f"{first.loads} / {first.misses}", f"{second.loads} / {second.misses}", "-"],
            ["manager overhead", "-", f"{statistics.median(overhead):,.0f} µs (lock, place, bind, release)", "-"],
        ],
    )


def tiny_a(repeats: int) -> None:
    """(a) on the tiny zoo models, on CPU."""
    import torch
    from PIL import Image
    from tests.zoo import hub_ids, zoo_root

    from vchat.runtime import ModelManager

    root = zoo_root()
    models = {key: str(root / "local" / key) for key in hub_ids()}
    manager = ModelManager(models, device="cpu", vram_budget=None, ram_budget=None)
    image = Image.new("RGB", (64, 64), (10, 200, 30))

    def kwargs() -> dict[str, Any]:
        return {
            "prompt": "a house",
            "image": image,
            "num_inference_steps": 2,
            "height": 64,
            "width": 64,
            "output_type": "np",
            "generator": torch.Generator().manual_seed(0),
        }

    part_a(manager, "tiny models, CPU, 2 steps at 64 px", kwargs, repeats)


# ----- (c) every tool twice under a 6 GB GPU ----------------------------------------------------------------------


def write_models(folder: Path, device: str) -> dict[str, str]:
    """Save full-size random-weight models (fp16 safetensors) as local folders; returns the [models] table."""
    import torch
    from diffusers import PNDMScheduler
    from tests.zoo import _clip_tokenizer

    def save(module: Any, path: Path) -> None:
        module.half().save_pretrained(path)  # .half(): diffusers' .to(dtype) logs a warning per call

    keys = sorted({k for keys in TOOLS.values() for k in keys})
    built: dict[str, Path] = {}
    with torch.device(device):  # random init is much faster on a GPU
        for key in keys:
            model_key, _, sub = key.partition(".")
            path = folder / model_key / sub if sub and not key.startswith("annotators.") else folder / model_key
            if key.startswith("controlnet_") and "controlnet" in built:
                path.mkdir(parents=True)
                for file in built["controlnet"].iterdir():  # identical architecture: hard-link one
                    os.link(file, path / file.name)
                continue
            module = build(key)
            if key.startswith("annotators."):
                _save_annotator(module, key, path)
            else:
                save(module, path)
            if key.startswith("controlnet_"):
                built["controlnet"] = path
            del module
    _clip_tokenizer().save_pretrained(folder / "sd15" / "tokenizer")
    PNDMScheduler.from_config(json.loads((CONFIGS / "scheduler.json").read_text())).save_pretrained(
        folder / "sd15" / "scheduler"
    )
    return {key: str(folder / key) for key in {k.partition(".")[0] for k in keys}}


def _save_annotator(module: Any, key: str, folder: Path) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    name = key.split(".", 1)[1]
    if name == "hed":
        torch.save(module.float().cpu().state_dict(), folder / "ControlNetHED.pth")
    elif name == "mlsd":
        torch.save(module.float().cpu().state_dict(), folder / "mlsd_large_512_fp32.pth")
    else:
        # controlnet_aux strips the first key component of the body and hand checkpoints when loading them.
        for part, file in (("body", "body_pose_model.pth"), ("hand", "hand_pose_model.pth")):
            state = module[part].float().cpu().state_dict()
            torch.save({k.split(".", 1)[1]: v for k, v in state.items()}, folder / file)
        torch.save(module["face"].float().cpu().state_dict(), folder / "facenet.pth")


def tool_runners(steps: int, size: int) -> dict[str, Callable[[Any], Any]]:
    """One function per tool, doing what the tool would do with dummy inputs at realistic sizes."""
    import numpy as np
    import torch
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (size // 4, size // 4, 3 * size // 4, 3 * size // 4))

    def sd(kind: str, controlnet: str | None = None, **extra: Any) -> Callable[[Any], Any]:
        def run(manager: Any) -> Any:
            view = manager.sd_pipeline(kind, controlnet=controlnet, tool=f"sd_{kind}")
            out = view(
                prompt="a photo",
                num_inference_steps=steps,
                output_type="pt",
                generator=torch.Generator().manual_seed(0),
                **extra,
            )
            return out, view.degraded

        return run

    def model(tool: str, key: str, make: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
        def run(manager: Any) -> Any:
            def fn(parts: Any) -> Any:
                with torch.no_grad():
                    return make(parts[key], parts)

            outcome = manager.run(fn, key, tool=tool)
            return outcome.value, outcome.degraded

        return run

    def px(parts: Any, size: int) -> Any:
        return torch.randn(1, 3, size, size, device=parts.device, dtype=parts.torch_dtype)

    def ids(parts: Any, n: int = 8) -> Any:
        return torch.full((1, n), 101, device=parts.device, dtype=torch.long)

    caption = model("caption", "blip_caption", lambda m, p: m.generate(pixel_values=px(p, 384), max_new_tokens=20))
    vqa = model(
        "visual_question",
        "blip_vqa",
        lambda m, p: m.generate(pixel_values=px(p, 384), input_ids=ids(p), max_new_tokens=10),
    )
    clipseg = model("clipseg", "clipseg", lambda m, p: m(input_ids=torch.ones_like(ids(p)), pixel_values=px(p, 352)))
    dino = model(
        "detect_objects",
        "grounding_dino",
        lambda m, p: m(pixel_values=px(p, 800), input_ids=ids(p), attention_mask=torch.ones_like(ids(p))),
    )
    sam = model(
        "segment_anything",
        "sam",
        lambda m, p: m(pixel_values=px(p, 1024), input_points=torch.tensor([[[[256.0, 256.0]]]], device=p.device)),
    )
    depth = model("depth_map", "depth", lambda m, p: m(pixel_values=px(p, 384)))
    seg = model("segmentation_map", "segmentation", lambda m, p: m(pixel_values=px(p, 512)))

    def annot(key: str, **kw: Any) -> Callable[[Any], Any]:
        return model(key, key, lambda m, p: m(image, detect_resolution=512, image_resolution=512, **kw))

    inpaint = sd("inpaint", image=image, mask_image=mask, height=size, width=size)

    def both(*runs: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def run(manager: Any) -> Any:
            results = [r(manager) for r in runs]
            return results[-1][0], next((d for _, d in results if d), None)

        return run

    runners: dict[str, Callable[[Any], Any]] = {
        "caption": caption,
        "visual_question": vqa,
        "text_to_image": sd("text2img", height=size, width=size),
        "instruct_edit": sd("pix2pix", image=image),
        "remove_object": both(clipseg, inpaint),
        "replace_object": both(clipseg, inpaint),
        "outpaint": both(caption, inpaint),
        "line_map": annot("annotators.mlsd"),
        "hed_map": annot("annotators.hed"),
        "scribble_map": annot("annotators.hed", scribble=True),
        "pose_map": annot("annotators.openpose"),
        "depth_map": depth,
        "normal_map": depth,
        "segmentation_map": seg,
        **{f"generate_from_{k}": sd("controlnet", f"controlnet_{k}", image=image) for k in CONTROLNET_KINDS},
        "detect_objects": dino,
        "segment_anything": sam,
        "segment_object": both(dino, sam),
        "remove_background": clipseg,
    }
    return runners


def part_c(device_name: str, steps: int, size: int, cap_gib: float, reserve_gib: float, repeats: int) -> None:
    """(c) every tool in sequence twice with the allocator capped, full-size random-weight models."""
    import torch

    from vchat.runtime import ModelManager

    if device_name.startswith("cuda") and not torch.cuda.is_available():
        print("\n(c) skipped: no CUDA GPU visible")
        return
    cuda = device_name.startswith("cuda")
    device = torch.device(device_name)
    name = torch.cuda.get_device_name(device) if cuda else "CPU smoke run"
    with tempfile.TemporaryDirectory(prefix="vchat-bench-") as tmp:
        started = time.perf_counter()
        models = write_models(Path(tmp), device_name)
        print(f"\nwrote full-size random-weight models in {time.perf_counter() - started:.0f} s", flush=True)
        budget = int((cap_gib - reserve_gib) * GIB)
        if cuda:
            torch.cuda.empty_cache()
            # A 6 GB card: the allocator is capped, so an overflow is a real out-of-memory error.
            total = torch.cuda.get_device_properties(device).total_memory
            torch.cuda.set_per_process_memory_fraction(cap_gib * GIB / total, device)
            manager = ModelManager(models, device=device_name, dtype="float16", vram_budget=budget, ram_budget="auto")
        else:
            manager = ModelManager(models, device="cpu", vram_budget=None, ram_budget=budget)
        runners = tool_runners(steps, size)
        rows = []
        overall_peak = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for round_index in (1, 2):
                for tool, run in runners.items():
                    if cuda:
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats(device)
                    before = manager.stats.copy()
                    started = time.perf_counter()
                    try:
                        _, degraded = run(manager)
                    except Exception as exc:  # keep going: one broken tool should not cost the whole GPU run
                        degraded = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"
                    if cuda:
                        torch.cuda.synchronize()
                    seconds = time.perf_counter() - started
                    delta = manager.stats.since(before)
                    peak = torch.cuda.max_memory_allocated(device) if cuda else 0
                    overall_peak = max(overall_peak, peak)
                    swap_s = (delta.load_ms + delta.move_ms + delta.eviction_ms) / 1000
                    print(f"  round {round_index} {tool}: {seconds:.2f} s {degraded or ''}", flush=True)
                    rows.append(
                        [
                            round_index,
                            tool,
                            f"{seconds:.2f}",
                            f"{swap_s:.2f}",
                            delta.loads,
                            delta.moves,
                            delta.evictions,
                            delta.drops,
                            f"{peak / GIB:.2f}",
                            degraded or "",
                        ]
                    )
        s = manager.stats
        table(
            f"(c) every tool twice, full-size models, {device_name} capped at {cap_gib:g} GiB, weights budget "
            f"{budget / GIB:.1f} GiB, {steps} steps at {size} px ({name})",
            ["round", "tool", "seconds", "swap s", "loads", "moves", "evictions", "drops", "peak GiB", "degraded"],
            rows,
        )
        per_round = [sum(float(r[2]) for r in rows if r[0] == i) for i in (1, 2)]
        table(
            "(c) totals",
            ["", "value"],
            [
                ["seconds, round 1 / round 2", f"{per_round[0]:.1f} / {per_round[1]:.1f}"],
                ["peak allocated (all calls)", f"{overall_peak / GIB:.2f} GiB (cap {cap_gib:g} GiB)"],
                ["peak resident weights", f"{s.peak_device_bytes / GIB:.2f} GiB (budget {budget / GIB:.1f} GiB)"],
                ["loads", f"{s.loads} ({mb(s.load_bytes)}, {s.load_ms / 1000:.1f} s)"],
                ["moves to GPU", f"{s.moves} ({mb(s.move_bytes)}, {s.move_ms / 1000:.1f} s)"],
                ["evictions to CPU", f"{s.evictions} ({mb(s.eviction_bytes)}, {s.eviction_ms / 1000:.1f} s)"],
                ["drops from RAM / OOM retries", f"{s.drops} / {s.oom_retries}"],
            ],
        )
        if cuda:
            torch.cuda.set_per_process_memory_fraction(1.0, device)

        def kwargs() -> dict[str, Any]:
            from PIL import Image

            return {
                "prompt": "a house",
                "image": Image.new("RGB", (size, size)),
                "num_inference_steps": steps,
                "output_type": "pt",
                "generator": torch.Generator().manual_seed(0),
            }

        part_a(manager, f"full size, {name}, {steps} steps at {size} px", kwargs, repeats)
        manager.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="also run (c) on CUDA")
    parser.add_argument("--device", default="cuda:0", help="device for (c); cpu gives a slow smoke run of its code")
    parser.add_argument("--size", type=int, default=512, help="image size of the SD calls in (c)")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps per SD call in (c)")
    parser.add_argument("--cap", type=float, default=6.0, help="GPU memory cap in GiB for (c)")
    parser.add_argument("--reserve", type=float, default=1.0, help="GiB of the cap kept for activations in (c)")
    parser.add_argument("--skip-ab", action="store_true", help="run only (c)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats in (a)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.skip_ab:
        tiny_a(args.repeats)
        part_b()
    if args.gpu:
        part_c(args.device, args.steps, args.size, args.cap, args.reserve, max(5, args.repeats // 4))
    else:
        print("\n(c) not run: pass --gpu on a machine with a CUDA GPU")


if __name__ == "__main__":
    main()
