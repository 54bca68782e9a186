"""remove_object and replace_object: grounded masks, the CLIPSeg fallback, empty masks, untouched surroundings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests import gen_fixtures as gf

from vchat.errors import ModelLoadError
from vchat.tools.perception import grounding

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BOX = (25.0, 18.0, 75.0, 56.0)  # the yellow square of the 100x75 test photo


@pytest.fixture(scope="module")
def models() -> Iterator[Any]:
    yield from gf.module_models()


@pytest.fixture
def session(tmp_path: Path, models: Any) -> Any:
    return gf.photo_session(tmp_path, models)


def _box_mask(image: Image.Image, boxes: Any, **_: Any) -> Image.Image:
    mask = Image.new("L", image.size, 0)
    for det in boxes:
        mask.paste(255, tuple(round(v) for v in det.box))
    return mask


@pytest.fixture
def grounded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Grounding DINO finds the square (the tiny random model finds nothing reliable); SAM fills its box."""
    found = [grounding.Detection("square", 0.9, BOX)]
    monkeypatch.setattr(grounding, "detect_boxes", lambda ctx, image, text, **kw: list(found))
    monkeypatch.setattr(grounding, "segment_boxes", lambda ctx, image, boxes, **kw: _box_mask(image, boxes))
    return found


@contextmanager
def clipseg_bias(models: Any, value: float) -> Iterator[None]:
    """Push every CLIPSeg logit up (object everywhere) or down (nothing anywhere)."""
    import torch

    with models.use("clipseg") as parts:
        conv = parts["clipseg"].decoder.transposed_convolution
    saved = conv.bias.detach().clone()
    with torch.no_grad():
        conv.bias.fill_(value)
    try:
        yield
    finally:
        with torch.no_grad():
            conv.bias.copy_(saved)


def _original(session: Any) -> np.ndarray:
    return np.asarray(Image.open(session.store.get("img1").path).convert("RGB"))


def test_remove_object_repaints_only_the_object(session: Any, grounded: list[Any]) -> None:
    args = {"image": "img1", "object": "square", **gf.FAST}
    step = session.run_tool("remove_object", named=args)
    assert step.observation.startswith("Removed the square from img1 (mask from grounding_dino+sam covering"), (
        step.observation
    )
    (ref,) = step.images
    assert (ref.width, ref.height, ref.mode) == (100, 75, "RGB")
    assert ref.parents == ("img1",) and ref.seed == 7
    assert ref.params["object"] == "square" and ref.params["negative_prompt"] == "square"
    assert ref.params["mask"] == "grounding_dino+sam" and 0.2 < ref.params["mask_coverage"] < 0.5
    out, original = gf.pixels(ref), _original(session)
    assert np.array_equal(out[:5, :5], original[:5, :5])  # far from the object: exactly the original
    assert not np.array_equal(out[30:45, 40:60], original[30:45, 40:60])  # the object: repainted
    again = session.run_tool("remove_object", named=args)
    assert np.array_equal(out, gf.pixels(again.images[0]))


def test_replace_object_records_the_replacement(session: Any, grounded: list[Any]) -> None:
    args = {"image": "img1", "object": "square", "replacement": "a black cat", **gf.FAST}
    step = session.run_tool("replace_object", named=args)
    assert step.observation.startswith("Replaced the square in img1 with 'a black cat' (mask from grounding_dino+sam")
    (ref,) = step.images
    assert (ref.width, ref.height) == (100, 75) and ref.params["prompt"] == "a black cat"


@pytest.mark.parametrize("tool", ["remove_object", "replace_object"])
def test_nothing_found_is_an_honest_observation(session: Any, grounded: list[Any], tool: str) -> None:
    grounded.clear()
    args = {"image": "img1", "object": "car", "replacement": "a bus", **gf.FAST}
    if tool == "remove_object":
        del args["replacement"]
    step = session.run_tool(tool, named=args)
    assert step.observation == f"{tool} failed: no car found in img1; the image was not changed"
    assert not step.images and gf.files_in(session.folder) == ["img1.png", "session.jsonl"]


def test_real_grounding_and_sam_on_tiny_models(session: Any) -> None:
    # Random weights find whatever they find; either way the tool answers in words and never crashes.
    step = session.run_tool("remove_object", named={"image": "img1", "object": "square", **gf.FAST})
    if step.images:
        assert "mask from grounding_dino+sam" in step.observation
    else:
        assert step.observation == "remove_object failed: no square found in img1; the image was not changed"


def test_clipseg_masks_when_grounding_cannot_run(session: Any, models: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise ModelLoadError("model grounding_dino (IDEA-Research/grounding-dino-tiny) is not downloaded")

    monkeypatch.setattr(grounding, "detect_boxes", missing)
    with clipseg_bias(models, 30.0):
        step = session.run_tool("remove_object", named={"image": "img1", "object": "square", **gf.FAST})
    assert "mask from clipseg covering 100% of the image, so most of the picture was repainted" in step.observation
    assert step.images[0].params["mask"] == "clipseg"
    with clipseg_bias(models, -30.0):
        step = session.run_tool("remove_object", named={"image": "img1", "object": "car", **gf.FAST})
    assert step.observation.startswith("remove_object failed: no car found in img1 (Grounding DINO + SAM could not")
    assert step.observation.endswith("used CLIPSeg); the image was not changed")


def test_clipseg_when_grounding_weights_are_missing(session: Any, models: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise ModelLoadError("model grounding_dino (IDEA-Research/grounding-dino-tiny) is not downloaded")

    monkeypatch.setattr(grounding, "detect_boxes", missing)
    with clipseg_bias(models, 30.0):
        step = session.run_tool("remove_object", named={"image": "img1", "object": "square", **gf.FAST})
    assert step.images and step.images[0].params["mask"] == "clipseg"
    assert step.degraded is not None and "used CLIPSeg" in step.degraded
    assert "(note: Grounding DINO + SAM could not run (model grounding_dino" in step.observation


def test_transparent_input_stays_transparent(tmp_path: Path, models: Any, grounded: list[Any]) -> None:
    session = gf.gen_session(tmp_path, models)
    image = Image.new("RGBA", (100, 75), (30, 60, 90, 255))
    image.paste((220, 200, 40, 120), (25, 18, 75, 56))
    image.save(tmp_path / "cut.png")
    session.attach(tmp_path / "cut.png")
    step = session.run_tool("remove_object", named={"image": "img1", "object": "square", **gf.FAST})
    with Image.open(step.images[0].path) as img:
        assert img.mode == "RGBA" and img.getpixel((50, 40))[3] == 120 and img.getpixel((2, 2))[3] == 255
