"""ModelManager: laziness, sharing, LRU eviction, locking, budgets, RAM drops, degraded modes and OOM retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vchat.config import ToolPolicy
from vchat.errors import ModelLoadError

MB = 10**6
SD_CORE = ("sd15.unet", "sd15.text_encoder", "sd15.vae")


def _size(make_manager: Callable[..., Any], *keys: str) -> int:
    probe = make_manager()
    with probe.use(*keys) as parts:
        pass
    return sum(probe.resident()[k][1] for k in keys if k in parts and probe.resident()[k][1])


def test_nothing_loads_until_used_and_a_second_use_is_a_hit(make_manager: Callable[..., Any]) -> None:
    manager = make_manager()
    assert manager.resident() == {} and manager.stats.loads == 0
    with manager.use("sd15.vae", "sd15.tokenizer", tool="t") as parts:
        vae = parts["sd15.vae"]
        assert manager.resident()["sd15.vae"][0] == "sim:0"
    first = manager.stats.copy()
    assert first.loads == 2 and first.misses == 2
    with manager.use("sd15.vae", "sd15.tokenizer", tool="t") as parts:
        assert parts["sd15.vae"] is vae
    delta = manager.stats.since(first)
    assert (delta.loads, delta.misses, delta.hits, delta.bytes_moved) == (0, 0, 2, 0)


def test_progress_reports_each_load(make_manager: Callable[..., Any]) -> None:
    seen: list[tuple[int, int, str]] = []
    manager = make_manager(progress=lambda done, total, label: seen.append((done, total, label)))
    with manager.use("sd15.vae", "sd15.text_encoder"):
        pass
    assert seen == [(0, 2, "loading sd15.vae"), (1, 2, "loading sd15.text_encoder"), (2, 2, "models ready")]


def test_least_recently_used_is_evicted_to_cpu(make_manager: Callable[..., Any]) -> None:
    net = _size(make_manager, "controlnet_canny")
    manager = make_manager(vram=2 * net)
    for key in ("controlnet_canny", "controlnet_hed", "controlnet_canny", "controlnet_mlsd"):
        with manager.use(key):
            pass
    where = {k: v[0] for k, v in manager.resident().items()}
    assert where == {"controlnet_canny": "sim:0", "controlnet_mlsd": "sim:0", "controlnet_hed": "cpu"}
    assert manager.stats.evictions == 1 and manager.stats.eviction_bytes == net
    assert manager.stats.peak_device_bytes <= 2 * net


def test_shared_sd_core_is_kept_longest(make_manager: Callable[..., Any]) -> None:
    core = _size(make_manager, *SD_CORE)
    net = _size(make_manager, "controlnet_canny")
    manager = make_manager(vram=core + net + net // 2)
    with manager.use(*SD_CORE):
        pass
    for key in ("controlnet_canny", "controlnet_hed", "controlnet_seg"):
        with manager.use(key):
            pass
    where = {k: v[0] for k, v in manager.resident().items()}
    # The core is least recently used, yet only ControlNets were evicted to make room.
    assert all(where[k] == "sim:0" for k in SD_CORE)
    assert where["controlnet_seg"] == "sim:0"
    assert where["controlnet_canny"] == where["controlnet_hed"] == "cpu"


@pytest.mark.slow
def test_locked_components_are_never_evicted(make_manager: Callable[..., Any]) -> None:
    net = _size(make_manager, "controlnet_canny")
    manager = make_manager(vram=2 * net)
    with manager.use("controlnet_canny") as outer:
        canny = outer["controlnet_canny"]
        with manager.use("controlnet_hed", "controlnet_mlsd") as inner:
            # Only one ControlNet fits beside the locked one: the inner call swaps rather than evict it.
            assert inner.mode == "offload" and inner.degraded
            assert manager.resident()["controlnet_canny"][0] == "sim:0"
        assert outer["controlnet_canny"] is canny
    assert manager.stats.peak_device_bytes <= 2 * net


def test_ram_budget_drops_least_recently_used_and_reloads(make_manager: Callable[..., Any]) -> None:
    net = _size(make_manager, "controlnet_canny")
    manager = make_manager(vram=net, ram=net + net // 2)
    for key in ("controlnet_canny", "controlnet_hed", "controlnet_mlsd"):
        with manager.use(key):
            pass
    resident = manager.resident()
    assert "controlnet_canny" not in resident  # evicted to CPU, then dropped under the RAM budget
    assert resident["controlnet_hed"][0] == "cpu" and resident["controlnet_mlsd"][0] == "sim:0"
    assert manager.stats.drops == 1 and manager.device_bytes("cpu") <= net + net // 2
    with manager.use("controlnet_canny"):
        pass
    assert manager.stats.loads == 4


def test_drop_forgets_cached_views(make_manager: Callable[..., Any]) -> None:
    manager = make_manager()
    view = manager.sd_pipeline("text2img")
    with view.open() as first:
        pass
    manager.clear()
    with view.open() as second:
        assert second is not first and second.vae is manager._entries["sd15.vae"].obj
    assert len(manager._views) == 1


def test_detectors_default_to_cpu_and_tool_policy_overrides(make_manager: Callable[..., Any]) -> None:
    tools = {"depth_gpu": ToolPolicy(device="sim:0"), "caption_rarely": ToolPolicy(keep="offload")}
    manager = make_manager(tools=tools)
    with manager.use("depth", tool="depth_map") as parts:
        assert manager.resident()["depth"][0] == "cpu" and str(parts.device) == "cpu"
    with manager.use("depth", tool="depth_gpu"):
        assert manager.resident()["depth"][0] == "sim:0"
    with manager.use("blip_caption", tool="caption_rarely"):
        assert manager.resident()["blip_caption"][0] == "sim:0"
    assert manager.resident()["blip_caption"][0] == "cpu"  # keep = "offload": back to CPU after the call


def _text2img(manager: Any, **kwargs: Any) -> Any:
    import torch

    view = manager.sd_pipeline("text2img")
    out = view(
        prompt="a cat",
        num_inference_steps=2,
        height=64,
        width=64,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )
    return view, out.images


@pytest.mark.slow
def test_degraded_modes_give_the_same_image(make_manager: Callable[..., Any]) -> None:
    import numpy as np

    unet = _size(make_manager, "sd15.unet")
    _, reference = _text2img(make_manager())
    offloaded = make_manager(vram=unet + unet // 10)  # each part fits alone, not all at once
    view, image = _text2img(offloaded)
    assert view.degraded and "swapped" in view.degraded
    np.testing.assert_allclose(image, reference, atol=1e-5)
    assert offloaded.stats.peak_device_bytes <= unet + unet // 10
    streamed = make_manager(vram=unet // 2)  # not even the UNet fits: layers are streamed
    view, image = _text2img(streamed)
    assert view.degraded and "streamed" in view.degraded
    np.testing.assert_allclose(image, reference, atol=1e-5)
    assert streamed.stats.peak_device_bytes <= unet // 2
    # The hooks are gone afterwards: the same components run normally again.
    assert not hasattr(streamed._entries["sd15.unet"].obj, "_hf_hook")


def test_cpu_fallback_only_for_tools_that_allow_it(make_manager: Callable[..., Any]) -> None:
    manager = make_manager(vram=1000, tools={"hed_gpu": ToolPolicy(device="sim:0")})
    with manager.use("annotators.hed", tool="hed_gpu") as parts:
        assert parts.mode == "cpu" and parts.degraded == "ran on CPU (not enough sim:0 memory)"
    with pytest.raises(ModelLoadError) as err, manager.use("annotators.hed", tool="hed_gpu", allow_cpu=False):
        pass
    assert "\n" not in str(err.value) and "vram_budget" in str(err.value)


def test_out_of_memory_lowers_the_budget_and_retries_once_degraded(make_manager: Callable[..., Any]) -> None:
    import torch

    manager = make_manager(vram=100 * MB)
    calls: list[str] = []

    def fn(parts: Any) -> str:
        calls.append(parts.mode)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return "ok"

    outcome = manager.run(fn, "blip_caption", "blip_caption.processor", tool="caption")
    assert outcome.value == "ok" and outcome.degraded
    # The budget fell below what was resident (BLIP alone); BLIP cannot be streamed, so the retry runs on CPU.
    assert calls == ["resident", "cpu"]
    assert manager.stats.oom_retries == 1
    assert manager.budget("sim:0") < 100 * MB


def test_out_of_memory_twice_is_one_line_error(make_manager: Callable[..., Any]) -> None:
    import torch

    manager = make_manager(vram=100 * MB)

    def fn(parts: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(ModelLoadError) as err:
        manager.run(fn, "sam", tool="segment")
    assert "\n" not in str(err.value) and "segment" in str(err.value)
    assert manager.resident()["sam"][1] > 0  # still loaded, unlocked: usable by the next call
    assert manager._entries["sam"].pins == 0


@pytest.mark.slow
def test_whole_tool_set_in_sequence_never_exceeds_a_small_budget(make_manager: Callable[..., Any]) -> None:
    import torch
    from PIL import Image

    sets = [
        ("blip_caption", "blip_caption.processor"),
        ("blip_vqa", "blip_vqa.processor"),
        ("clipseg", "clipseg.processor"),
        ("grounding_dino", "grounding_dino.processor", "sam", "sam.processor"),
        ("depth", "depth.processor"),
        ("segmentation", "segmentation.processor"),
    ]
    views = [("text2img", None), ("pix2pix", None), ("inpaint", None)]
    views += [("controlnet", f"controlnet_{k}") for k in ("canny", "hed", "depth", "seg")]
    total = _size(make_manager, *{k for s in sets for k in s}, *SD_CORE, "pix2pix.unet", "sd15_inpaint.unet")
    total += 4 * _size(make_manager, "controlnet_canny")
    budget = total // 3
    manager = make_manager(vram=budget)
    image = Image.new("RGB", (64, 64), (120, 40, 200))
    mask = Image.new("L", (64, 64), 255)
    for _round in range(2):
        for keys in sets:
            with manager.use(*keys, tool="detector"):
                pass
        for kind, controlnet in views:
            view = manager.sd_pipeline(kind, controlnet=controlnet)
            extra: dict[str, Any] = {}
            if kind == "controlnet" or kind == "pix2pix":
                extra = {"image": image}
            elif kind == "inpaint":
                extra = {"image": image, "mask_image": mask}
            out = view(
                prompt="winter",
                num_inference_steps=2,
                height=64,
                width=64,
                output_type="np",
                generator=torch.Generator().manual_seed(0),
                **extra,
            )
            assert out.images.shape == (1, 64, 64, 3)
    assert manager.stats.peak_device_bytes <= budget
    assert manager.stats.evictions > 0 and manager.stats.oom_retries == 0


def test_detectors_that_cannot_stream_fall_back_to_cpu(make_manager: Any) -> None:
    """SAM/CLIPSeg read weights outside forward: under a tiny budget they run on CPU, not streamed."""
    import torch
    from PIL import Image

    manager = make_manager(vram=1000)
    with manager.use("clipseg", "clipseg.processor", tool="t") as parts:
        assert parts.mode == "cpu"
        processor = parts["clipseg.processor"]
        inputs = processor(text=["a cat"], images=[Image.new("RGB", (64, 64))], return_tensors="pt")
        with torch.inference_mode():
            out = parts["clipseg"](**inputs)
        assert out.logits.numel() > 0
