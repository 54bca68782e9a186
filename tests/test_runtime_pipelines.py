"""Stable Diffusion views on shared components, and every default model running, by hub id and from folders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

VIEWS = [
    ("text2img", None),
    ("img2img", None),
    ("inpaint", None),
    ("pix2pix", None),
    ("controlnet", "controlnet_canny"),
]


def _inputs(kind: str) -> dict[str, Any]:
    import torch
    from PIL import Image

    image = Image.new("RGB", (64, 64), (200, 120, 40))
    extra: dict[str, Any] = {}
    if kind in ("img2img", "pix2pix", "controlnet"):
        extra["image"] = image
    if kind == "inpaint":
        extra.update(image=image, mask_image=Image.new("L", (64, 64), 255))
    if kind != "img2img" and kind != "pix2pix":
        extra.update(height=64, width=64)
    return {
        "prompt": "a red car",
        "num_inference_steps": 2,
        "output_type": "np",
        "generator": torch.Generator().manual_seed(0),
        **extra,
    }


@pytest.mark.parametrize("source", ["hub", "folder"])
@pytest.mark.parametrize(("kind", "controlnet"), VIEWS)
@pytest.mark.slow
def test_each_view_runs_two_steps(
    make_manager: Callable[..., Any], local_models: dict[str, str], source: str, kind: str, controlnet: str | None
) -> None:
    manager = make_manager(models=local_models if source == "folder" else None)
    steps: list[tuple[int, int, str]] = []
    view = manager.sd_pipeline(kind, controlnet=controlnet, tool=f"tool_{kind}")
    out = view(progress=lambda done, total, label: steps.append((done, total, label)), **_inputs(kind))
    assert out.images.shape == (1, 64, 64, 3) and view.degraded is None
    denoising = [(done, total) for done, total, label in steps if label == "denoising"]
    assert denoising and denoising[-1][0] == denoising[-1][1]
    assert all(entry.source.local == (source == "folder") for entry in manager._entries.values())


def test_views_share_components_by_identity(make_manager: Callable[..., Any]) -> None:
    manager = make_manager()
    pipes = {}
    for kind, controlnet in [*VIEWS, ("controlnet", "controlnet_depth")]:
        with manager.sd_pipeline(kind, controlnet=controlnet).open() as pipe:
            pipes[controlnet or kind] = pipe
    first = pipes["text2img"]
    for pipe in pipes.values():
        assert pipe.text_encoder is first.text_encoder and pipe.vae is first.vae and pipe.tokenizer is first.tokenizer
    for name in ("img2img", "controlnet_canny", "controlnet_depth"):
        assert pipes[name].unet is first.unet  # one base UNet for text-to-image and every ControlNet
    assert pipes["controlnet_canny"].controlnet is not pipes["controlnet_depth"].controlnet
    assert pipes["inpaint"].unet.config.in_channels == 9 and pipes["pix2pix"].unet.config.in_channels == 8
    schedulers = [pipe.scheduler for pipe in pipes.values()]
    assert len({id(s) for s in schedulers}) == len(schedulers)  # own scheduler per view
    assert type(pipes["controlnet_canny"].scheduler).__name__ == "UniPCMultistepScheduler"
    assert type(pipes["pix2pix"].scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    # Weights loaded once: 3 UNets, 2 ControlNets, one text encoder and one VAE.
    assert manager.stats.loads == 3 + 2 + 2 + 2  # + tokenizer and scheduler config


@pytest.mark.slow
def test_second_call_to_a_resident_view_moves_nothing(make_manager: Callable[..., Any]) -> None:
    manager = make_manager(vram="1GB")
    view = manager.sd_pipeline("controlnet", controlnet="controlnet_canny")
    view(**_inputs("controlnet"))
    with view.open() as bound:
        pass
    before = manager.stats.copy()
    view(**_inputs("controlnet"))
    delta = manager.stats.since(before)
    assert (delta.bytes_moved, delta.loads, delta.misses) == (0, 0, 0)
    with view.open() as again:
        assert again is bound  # the pipeline object itself is cached


def test_unknown_view_or_controlnet_is_refused(make_manager: Callable[..., Any]) -> None:
    manager = make_manager()
    with pytest.raises(ValueError, match="unknown Stable Diffusion view"):
        manager.sd_pipeline("upscale")
    with pytest.raises(ValueError, match="needs controlnet"):
        manager.sd_pipeline("controlnet")
    with pytest.raises(ValueError, match="unknown ControlNet"):
        manager.sd_pipeline("controlnet", controlnet="controlnet_lineart")


def _run_model(key: str, parts: Any) -> Any:
    import torch
    from PIL import Image

    image = Image.new("RGB", (128, 128), (90, 160, 30))
    processor = parts.get(f"{key}.processor")
    model = parts[key]
    with torch.no_grad():
        if key == "blip_caption":
            inputs = processor(images=image, return_tensors="pt")
            return processor.decode(model.generate(**inputs, max_new_tokens=4)[0], skip_special_tokens=True)
        if key == "blip_vqa":
            inputs = processor(images=image, text="what color is the car?", return_tensors="pt")
            return processor.decode(model.generate(**inputs, max_new_tokens=4)[0], skip_special_tokens=True)
        if key == "clipseg":
            inputs = processor(text=["a car"], images=[image], padding=True, return_tensors="pt")
            return model(**inputs).logits
        if key == "grounding_dino":
            inputs = processor(images=image, text="a car.", return_tensors="pt")
            return model(**inputs).pred_boxes
        if key == "sam":
            inputs = processor(images=image, input_points=[[[32, 32]]], return_tensors="pt")
            return model(**inputs).pred_masks
        if key.startswith("annotators."):
            return model(image, detect_resolution=64, image_resolution=64)
        return model(**processor(images=image, return_tensors="pt"))


@pytest.mark.parametrize(
    "key",
    [
        "blip_caption",
        "blip_vqa",
        "clipseg",
        "depth",
        "segmentation",
        "grounding_dino",
        "sam",
        "annotators.hed",
        "annotators.mlsd",
    ],
)
@pytest.mark.slow
def test_every_default_model_loads_by_hub_id_and_runs(make_manager: Callable[..., Any], key: str) -> None:
    manager = make_manager()
    keys = (key,) if key.startswith("annotators.") else (key, f"{key}.processor")
    outcome = manager.run(lambda parts: _run_model(key, parts), *keys, tool=f"tool_{key}")
    assert outcome.value is not None and outcome.degraded is None
    assert not manager._entries[key].source.local


@pytest.mark.slow
def test_text2img_streams_layers_when_nothing_fits(make_manager: Callable[..., Any]) -> None:
    """Below the size of one component, the SD view runs with layer-by-layer streaming and says so."""
    import numpy as np

    reference = make_manager().sd_pipeline("text2img")(**_inputs("text2img")).images
    manager = make_manager(vram=1000)
    view = manager.sd_pipeline("text2img", tool="gen")
    out = view(**_inputs("text2img"))
    assert view.degraded is not None and "layer by layer" in view.degraded
    assert np.allclose(out.images, reference, atol=1e-4)
