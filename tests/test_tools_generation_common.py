"""Model-free parts of the generation tools: sizes, sampling parameters, canvas layout, masks, map recognition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests import gen_fixtures as gf
from tests.helpers import photo

from vchat.config import Settings
from vchat.errors import ToolError
from vchat.runtime import COMPONENTS
from vchat.store.images import ImageRef
from vchat.tools.generation import common as sd
from vchat.tools.generation import safety
from vchat.tools.generation.outpaint import canvas_layout
from vchat.tools.generation.toolset import GENERATION_TOOLS
from vchat.tools.maps import conditions
from vchat.tools.perception import masks
from vchat.tools.registry import tool_class

NAMES = [
    "generate_image",
    "instruct_edit",
    "remove_object",
    "replace_object",
    "generate_from_canny",
    "generate_from_lines",
    "generate_from_hed",
    "generate_from_scribble",
    "generate_from_pose",
    "generate_from_segmentation",
    "generate_from_depth",
    "generate_from_normal",
    "extend_image",
]


def test_registry_has_every_generation_tool_with_short_descriptions() -> None:
    assert [cls.name for cls in GENERATION_TOOLS] == NAMES
    for cls in GENERATION_TOOLS:
        assert tool_class(cls.name) is cls
        assert 40 < len(cls.description) < 260, cls.name
        assert "Returns" in cls.description or "returns" in cls.description, cls.name
        assert cls.components and set(cls.components) <= set(COMPONENTS), cls.name
        required = [f.name for f in cls.inputs if f.required]
        assert required[0] in ("prompt", "image")
        assert {f.name for f in cls.inputs} >= {"steps", "guidance", "seed"}


def test_required_inputs_are_as_specified() -> None:
    def required(name: str) -> list[str]:
        cls = tool_class(name)
        assert cls is not None
        return [f.name for f in cls.inputs if f.required]

    assert required("generate_image") == ["prompt"]
    assert required("instruct_edit") == ["image", "instruction"]
    assert required("remove_object") == ["image", "object"]
    assert required("replace_object") == ["image", "object", "replacement"]
    assert required("extend_image") == ["image"]
    for name in NAMES[4:12]:
        assert required(name) == ["image", "prompt"]


@pytest.mark.parametrize(
    ("size", "cap", "upscale", "expected"),
    [
        ((512, 512), 768, False, (512, 512)),
        ((4000, 3000), 768, False, (768, 576)),  # capped, aspect kept
        ((3000, 4000), 768, False, (576, 768)),
        ((100, 75), 768, False, (96, 72)),  # small stays small, multiples of 8
        ((64, 48), 768, False, (88, 64)),  # a side under 64 grows to 64
        ((200, 100), 768, True, (512, 256)),  # upscale_small lifts the long side to 512
        ((1000, 1000), 512, False, (512, 512)),
    ],
)
def test_fit_size(size: tuple[int, int], cap: int, upscale: bool, expected: tuple[int, int]) -> None:
    out = sd.fit_size(*size, cap=cap, upscale_small=upscale)
    assert out == expected
    assert all(side % 8 == 0 for side in out) and max(out) <= cap


def test_fit_size_refuses_extreme_aspect() -> None:
    with pytest.raises(ToolError, match="too elongated"):
        sd.fit_size(4000, 20, cap=768)


def test_generation_size_refuses_tiny_sizes() -> None:
    with pytest.raises(ToolError, match="too small"):
        sd.generation_size(32, 512, cap=768)


def test_generation_size_rounds_and_fits_the_cap() -> None:
    assert sd.generation_size(100, 515, cap=768) == (96, 512)
    assert sd.generation_size(1024, 512, cap=768) == (768, 384)


def test_max_side_setting() -> None:
    settings = Settings()
    assert sd.max_side(settings) == sd.DEFAULT_MAX_SIDE
    settings.sd_max_side = 1001  # type: ignore[attr-defined]
    assert sd.max_side(settings) == 1000
    settings.sd_max_side = 10  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="sd_max_side"):
        sd.max_side(settings)


def test_sampling_picks_and_keeps_seeds() -> None:
    fixed = sd.sampling({"steps": 3, "guidance": 5.0, "seed": 42, "negative_prompt": ""})
    assert (fixed.steps, fixed.guidance, fixed.seed) == (3, 5.0, 42)
    seeds = {sd.sampling({"seed": -1}).seed for _ in range(5)}
    assert len(seeds) > 1 and all(0 <= s <= sd.SEED_MAX for s in seeds)
    assert sd.sampling({}, negative="car").negative_prompt == "car"
    assert sd.sampling({"negative_prompt": "blur"}, negative="car").negative_prompt == "blur"
    assert fixed.record() == {"steps": 3, "guidance": 5.0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 500}, "steps"),
        ({"guidance": -1}, "guidance"),
        ({"seed": -5}, "seed"),
        ({"seed": 2**40}, "seed"),
        ({"steps": "many"}, "bad sampling parameter"),
    ],
)
def test_sampling_refuses_bad_values(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        sd.sampling(args)


def test_same_seed_same_generator_stream() -> None:
    import torch

    a = torch.randn(4, generator=sd.generator(5))
    b = torch.randn(4, generator=sd.generator(5))
    assert torch.equal(a, b) and sd.generator(5).device.type == "cpu"


def test_edit_input_keeps_alpha_and_size() -> None:
    rgba = Image.new("RGBA", (100, 70), (10, 20, 30, 128))
    rgb, alpha = sd.split_alpha(rgba)
    assert rgb.mode == "RGB" and alpha is not None
    prepared = sd.EditInput(rgb, alpha, sd.resized(rgb, (96, 72)))
    out = prepared.finish(Image.new("RGB", (96, 72), (200, 0, 0)))
    assert out.size == (100, 70) and out.mode == "RGBA" and out.getpixel((5, 5))[3] == 128


def test_composite_keeps_unmasked_pixels_exactly() -> None:
    original = photo(64, 48)
    generated = Image.new("RGB", (32, 24), (255, 0, 255))
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (40, 10, 60, 40))
    out = np.asarray(sd.composite(original, generated, mask, feather=2))
    base = np.asarray(original)
    assert np.array_equal(out[:, :30], base[:, :30])
    assert tuple(out[25, 50]) == (255, 0, 255)


@pytest.mark.parametrize(
    ("direction", "canvas", "corner"),
    [
        ("all", (200, 100), (50, 25)),
        ("horizontal", (200, 50), (50, 0)),
        ("vertical", (100, 100), (0, 25)),
        ("left", (200, 50), (100, 0)),
        ("right", (200, 50), (0, 0)),
        ("up", (100, 100), (0, 50)),
        ("down", (100, 100), (0, 0)),
    ],
)
def test_canvas_layout(direction: str, canvas: tuple[int, int], corner: tuple[int, int]) -> None:
    assert canvas_layout((100, 50), 2.0, direction) == (canvas, corner)


def test_canvas_layout_refuses_unknown_direction() -> None:
    with pytest.raises(ToolError, match="direction"):
        canvas_layout((100, 50), 2.0, "sideways")


def test_dilate_grows_and_mask_coverage() -> None:
    mask = np.zeros((100, 100), dtype=bool)
    mask[50, 50] = True
    grown = masks.dilate(mask, 0.03)
    assert grown[50, 53] and not grown[50, 60]
    found = masks.ObjectMask(mask, "clipseg")
    assert found.empty  # one pixel is a speck, not an object
    assert not masks.ObjectMask(grown, "clipseg").empty
    assert found.image().mode == "L"


def _ref(tool: str | None = None) -> ImageRef:
    return ImageRef("img1", Path("img1.png"), tool=tool)


@pytest.mark.parametrize("name", sorted(gf.MAPS))
def test_maps_are_recognised_and_photos_are_not(name: str) -> None:
    condition = conditions.CONDITIONS[name]
    assert conditions.is_map(condition, _ref(), gf.MAPS[name]())
    assert not conditions.is_map(condition, _ref(), photo(64, 64))


def test_lineage_decides_before_pixels() -> None:
    assert conditions.is_map(conditions.CONDITIONS["depth"], _ref("estimate_depth"), photo(64, 64))
    assert conditions.is_map(conditions.CONDITIONS["canny"], _ref("canny_edges"), photo(64, 64))


def test_drawing_on_white_is_inverted() -> None:
    drawing = Image.fromarray(255 - np.asarray(gf.edge_map()), "RGB")
    condition = conditions.CONDITIONS["scribble"]
    assert conditions.is_map(condition, _ref(), drawing)
    made = conditions._as_map(condition, drawing, (64, 64))
    assert np.asarray(made).mean() < 60  # light strokes on a dark ground again


def test_safety_modes() -> None:
    settings = Settings()
    assert safety.mode(settings) == "auto"
    for raw, expected in (("off", "off"), ("ON", "on"), ("false", "off"), ("1", "on")):
        settings.safety_checker = raw  # type: ignore[attr-defined]
        assert safety.mode(settings) == expected
    settings.safety_checker = "maybe"  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="safety_checker"):
        safety.mode(settings)
