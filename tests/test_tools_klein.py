"""The current tier's FLUX.2 [klein] tools on a tiny random klein loaded by its default id from a fake cache.

Every tool that switches tier runs in both tiers; reference images and masks are checked where the klein pipeline
receives them; the classic tier refuses references in one line; `vchat run --tool instruct_edit -i A -i B` runs in
a subprocess and its image names klein and both inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests import gen_fixtures as gf
from tests.helpers import photo

from vchat.errors import ToolInputError
from vchat.runtime.catalog import DEFAULT_MODELS, KLEIN_ID
from vchat.store.refs import read_png_record

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

SWITCHED = ("generate_image", "instruct_edit", "remove_object", "replace_object", "extend_image")
CLASSIC_MODEL = {
    "generate_image": DEFAULT_MODELS["sd15"],
    "instruct_edit": DEFAULT_MODELS["pix2pix"],
    "remove_object": DEFAULT_MODELS["sd15_inpaint"],
    "replace_object": DEFAULT_MODELS["sd15_inpaint"],
    "extend_image": DEFAULT_MODELS["sd15_inpaint"],
}
BOX = (25, 18, 75, 56)  # the yellow square of the 100x75 test photo
GROUP_HOOKS = ("group_offloading", "layer_execution_tracker", "lazy_prefetch_group_offloading")


@pytest.fixture(scope="module")
def cache() -> Path:
    """The zoo's fake HF cache (klein is in it under its default id)."""
    from tests.zoo import zoo_root

    return zoo_root() / "hub"


@pytest.fixture(scope="module")
def models(cache: Path) -> Iterator[Any]:
    """One CPU manager (fp32, one thread) over the zoo plus klein, offline."""
    import torch

    from vchat.runtime import ModelManager

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setenv("HF_HUB_CACHE", str(cache))
        patch.setenv("HF_HUB_OFFLINE", "1")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        manager = ModelManager(device="cpu", dtype="float32", vram_budget=None, ram_budget=None)
        try:
            yield manager
        finally:
            manager.clear()
            torch.set_num_threads(threads)


def _session(tmp_path: Path, models: Any, tier: str) -> Any:
    session = gf.gen_session(tmp_path, models, tier=tier)
    session.attach(_photo(tmp_path, "a.png", 100, 75, 0))
    session.attach(_photo(tmp_path, "b.png", 80, 80, 1))
    return session


def _photo(folder: Path, name: str, width: int, height: int, seed: int) -> Path:
    path = folder / name
    photo(width, height, seed=seed).save(path)
    return path


@pytest.fixture
def square_mask(monkeypatch: pytest.MonkeyPatch) -> str:
    """The text-to-mask step finds the test photo's square (tiny random detectors find nothing reliable).

    Both finders are patched, the classic one (Grounding DINO boxes, SAM masks) and, where masks has it, SAM 3's;
    returns the method the current tier's masks then report.
    """
    from vchat.tools.perception import grounding, masks
    from vchat.tools.registry import all_tools

    # Every tool module imported first: one that imports `detect_boxes` by name must keep the real one after this.
    all_tools()

    def scaled(image: Image.Image) -> tuple[int, ...]:
        scale = image.width / 100
        return tuple(round(v * scale) for v in BOX)

    def box_mask(ctx: Any, image: Image.Image, boxes: Any, **_: Any) -> Image.Image:
        mask = Image.new("L", image.size, 0)
        mask.paste(255, scaled(image))
        return mask

    def concept_mask(ctx: Any, image: Image.Image, text: str, tool: str, **_: Any) -> Any:
        left, top, right, bottom = scaled(image)
        found = np.zeros((image.height, image.width), dtype=bool)
        found[top:bottom, left:right] = True
        return masks.ObjectMask(found, "sam3")

    found = [grounding.Detection("square", 0.9, tuple(float(v) for v in BOX))]
    monkeypatch.setattr(grounding, "detect_boxes", lambda ctx, image, text, **kw: list(found))
    monkeypatch.setattr(grounding, "segment_boxes", box_mask)
    current = hasattr(masks, "sam3_mask")
    monkeypatch.setattr(masks, "sam3_mask", concept_mask, raising=False)
    return "sam3" if current else "grounding_dino+sam"


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """What each klein pipeline call was given (class name, keyword arguments); the real call still runs."""
    import diffusers

    calls: list[tuple[str, dict[str, Any]]] = []
    for name in ("Flux2KleinPipeline", "Flux2KleinInpaintPipeline"):
        cls = getattr(diffusers, name)
        original = cls.__call__

        def spy(self: Any, *args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append((_name, dict(kwargs)))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__call__", spy)
    return calls


def _args(tool: str) -> dict[str, Any]:
    fast = {"steps": 1, "seed": 3}
    return {
        "generate_image": {"prompt": "a red car", "width": 64, "height": 64, **fast},
        "instruct_edit": {"image": "img1", "instruction": "make it winter", **fast},
        "remove_object": {"image": "img1", "object": "square", **fast},
        "replace_object": {"image": "img1", "object": "square", "replacement": "a blue ball", **fast},
        "extend_image": {"image": "img1", "factor": 1.5, "direction": "right", "prompt": "a wall", **fast},
    }[tool]


@pytest.mark.parametrize("tier", ["classic", "current"])
@pytest.mark.parametrize("tool", SWITCHED)
def test_each_switched_tool_runs_in_both_tiers_and_records_its_model(
    tmp_path: Path, models: Any, received: list[Any], square_mask: str, tool: str, tier: str
) -> None:
    session = _session(tmp_path, models, tier)
    step = session.run_tool(tool, named=_args(tool))
    assert step.images, step.observation
    (made,) = step.images
    assert made.params["tier"] == tier
    assert made.params["model"] == (KLEIN_ID if tier == "current" else CLASSIC_MODEL[tool])
    # klein ran exactly when the tier says so, and the observation says which model made the image.
    assert bool(received) == (tier == "current")
    assert ("FLUX.2 [klein]" in step.observation) == (tier == "current"), step.observation
    if tool != "generate_image":
        assert made.parents[0] == "img1" and made.params["image"] == "img1"
    record = read_png_record(made.path)
    assert record is not None and record["params"]["model"] == made.params["model"]


def test_references_reach_the_pipeline_and_the_lineage(tmp_path: Path, models: Any, received: list[Any]) -> None:
    session = _session(tmp_path, models, "current")
    step = session.run_tool(
        "instruct_edit", named={"image": "img1", "instruction": "put the square from img2 here", "references": "img2"}
    )
    (made,) = step.images
    (name, kwargs), *_ = received
    assert name == "Flux2KleinPipeline"
    edited, reference = kwargs["image"]
    # The edited image first at its working size (100x75 -> multiples of 16), then the reference, fitted alike.
    assert edited.size == (96, 80) and reference.size == (80, 80)
    with Image.open(tmp_path / "b.png") as b:
        assert np.array_equal(np.asarray(reference), np.asarray(b.convert("RGB")))
    assert (kwargs["width"], kwargs["height"]) == (96, 80)
    assert kwargs["prompt_embeds"].shape[-1] == 48  # three stacked Qwen3 layers of the tiny encoder (16 wide)
    assert kwargs["num_inference_steps"] == 4  # the distilled checkpoint's own count when steps is left default
    assert made.parents == ("img1", "img2") and made.params["references"] == ["img2"]
    with Image.open(made.path) as out:
        assert out.size == (100, 75)  # back at the input's size
    assert "using img2" in step.observation


def test_three_references_at_most(tmp_path: Path, models: Any) -> None:
    session = _session(tmp_path, models, "current")
    with pytest.raises(ToolInputError, match="at most 3 images"):
        session.run_tool(
            "instruct_edit", named={"image": "img1", "instruction": "x", "references": ["img2"] * 4, "steps": 1}
        )


def test_the_classic_tier_refuses_references_in_one_line(
    tmp_path: Path, models: Any, received: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(tmp_path, models, "classic")
    loads: list[str] = []
    monkeypatch.setattr(type(models), "run", lambda self, fn, *keys, **kw: loads.append(keys))
    step = session.run_tool(
        "instruct_edit", named={"image": "img1", "instruction": "add the dog", "references": ["img2"], "steps": 1}
    )
    assert not step.images and not received and not loads  # refused before any model loads
    text = step.observation or ""
    assert "cannot use reference images in the classic tier" in text and "\n" not in text.strip()


def test_masks_feed_remove_and_replace_and_the_rest_stays(
    tmp_path: Path, models: Any, received: list[Any], square_mask: str
) -> None:
    session = _session(tmp_path, models, "current")
    step = session.run_tool("replace_object", named={"image": "img1", "object": "square", "replacement": "a ball"})
    (made,) = step.images
    (name, kwargs), *_ = received
    assert name == "Flux2KleinInpaintPipeline" and kwargs["strength"] == 1.0
    mask = np.asarray(kwargs["mask_image"]) > 127
    # The mask is the square (found at the 96x80 working size) grown by the dilation margin, nothing else.
    assert mask.shape == (80, 96)
    assert mask[int(37 * 80 / 75), int(50 * 96 / 100)] and not mask[2, 2] and not mask[-3, -3]
    assert made.params["mask"] == square_mask
    before = np.asarray(photo(100, 75, seed=0).convert("RGB"))
    after = gf.pixels(made)
    far = np.ones(before.shape[:2], dtype=bool)
    far[8:67, 15:86] = False  # the square plus dilation and feather
    assert np.array_equal(before[far], after[far])
    assert not np.array_equal(before[~far], after[~far])


def test_the_text_encoder_leaves_the_device_once_the_prompt_is_encoded_when_room_is_short(
    cache: Path, monkeypatch: Any
) -> None:
    """A component used before the tool (the planner, here CLIPSeg) keeps its place; the encoder makes way when the
    budget cannot hold both phases, and stays when it can."""
    import torch
    from tests.zoo import SimulatedBackend

    from vchat.runtime import ModelManager
    from vchat.runtime.catalog import KLEIN_TEXT_ENCODER, KLEIN_TRANSFORMER, KLEIN_VAE
    from vchat.runtime.klein import klein_pipeline

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    manager = ModelManager(device="sim:0", dtype="float32", backend=SimulatedBackend(), vram_budget=None)
    seen: list[dict[str, Any]] = []

    def on_step(pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        seen.append(manager.resident())
        return kwargs

    def generate() -> Any:
        view = klein_pipeline(manager, "edit", tool="generate_image")
        call = {"width": 64, "height": 64, "num_inference_steps": 1, "callback_on_step_end": on_step}
        view(prompt="a car", generator=torch.Generator().manual_seed(0), **call)
        return view

    generate()  # loads everything, unlimited: with room for both phases the encoder stays where it is
    assert seen[0][KLEIN_TEXT_ENCODER][0] == "sim:0"
    size = {key: held for key, (_, held) in manager.resident().items()}
    with manager.use("clipseg"):
        pass
    planner_like = manager.resident()["clipseg"][1]
    # Room for the stand-in planner and either phase, not for the encoder and the transformer together.
    budget = planner_like + size[KLEIN_TRANSFORMER] + size[KLEIN_VAE] + size[KLEIN_TEXT_ENCODER] // 2
    manager.set_budget("sim:0", budget)
    view = generate()
    during = seen[-1]
    assert during[KLEIN_TEXT_ENCODER][0] == "cpu" and during[KLEIN_TRANSFORMER][0] == "sim:0"
    assert during["clipseg"][0] == "sim:0"
    assert view.degraded is None
    manager.clear()


def test_a_budget_below_one_component_streams_through_diffusers_group_offloading(cache: Path, monkeypatch: Any) -> None:
    """Both the transformer and the text encoder stream (no CPU fallback), and the image is the resident one's."""
    import torch
    from tests.zoo import SimulatedBackend

    from vchat.runtime import ModelManager
    from vchat.runtime.catalog import KLEIN_TEXT_ENCODER, KLEIN_TRANSFORMER
    from vchat.runtime.klein import klein_pipeline

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hooked: list[tuple[bool, bool]] = []

    def run(vram: int | None) -> tuple[Any, str | None]:
        manager = ModelManager(device="sim:0", dtype="float32", backend=SimulatedBackend(), vram_budget=vram)

        def on_step(pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            registry = getattr(pipeline.transformer.transformer_blocks[0], "_diffusers_hook", None)
            hooked.append((vram is not None, registry is not None and "group_offloading" in registry.hooks))
            return kwargs

        view = klein_pipeline(manager, "edit", tool="generate_image")
        call = {"width": 64, "height": 64, "num_inference_steps": 1, "callback_on_step_end": on_step}
        out = view(prompt="a car", generator=torch.Generator().manual_seed(0), **call)
        # Afterwards no group-offload hook is left and the weights are whole again, in CPU memory.
        for key in (KLEIN_TEXT_ENCODER, KLEIN_TRANSFORMER):
            module = manager._entries[key].obj
            registries = [m._diffusers_hook for m in module.modules() if hasattr(m, "_diffusers_hook")]
            assert not any(name in r.hooks for r in registries for name in GROUP_HOOKS)
            assert {p.device.type for p in module.parameters()} == {"cpu"}
        manager.clear()
        return np.asarray(out.images[0]), view.degraded

    resident, note = run(None)
    streamed, degraded = run(1)
    assert note is None and degraded is not None and "streamed layer by layer" in degraded
    assert "ran on CPU" not in degraded  # the text encoder streamed too
    assert hooked == [(False, False), (True, True)]
    assert np.array_equal(resident, streamed)


def test_an_undistilled_checkpoint_gets_guidance_a_negative_prompt_and_its_own_steps(
    tmp_path: Path, models: Any, received: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vchat.runtime import klein

    monkeypatch.setattr(klein, "is_distilled", lambda manager: False)
    session = _session(tmp_path, models, "current")
    step = session.run_tool(
        "generate_image", named={"prompt": "a car", "width": 64, "height": 64, "negative_prompt": "blur", "seed": 1}
    )
    (_, kwargs), *_ = received
    assert kwargs["guidance_scale"] == 7.5 and kwargs["num_inference_steps"] == klein.BASE_STEPS
    assert kwargs["negative_prompt_embeds"].shape == kwargs["prompt_embeds"].shape
    assert step.images[0].params["guidance"] == 7.5 and step.images[0].params["negative_prompt"] == "blur"


def test_images_field_binds_lists_and_strings() -> None:
    from vchat.chat.binding import bind_named
    from vchat.tools.generation.instruct import InstructEdit
    from vchat.tools.schema import function_spec, input_schema

    base = {"image": "img1", "instruction": "x"}
    assert bind_named(InstructEdit, {**base, "references": "img2, img3"}, None)["references"] == ["img2", "img3"]
    assert bind_named(InstructEdit, {**base, "references": '["img2"]'}, None)["references"] == ["img2"]
    assert bind_named(InstructEdit, {**base, "references": ["img4"]}, None)["references"] == ["img4"]
    assert bind_named(InstructEdit, base, None)["references"] == []
    with pytest.raises(ToolInputError, match="list of image names"):
        bind_named(InstructEdit, {**base, "references": 5}, None)
    prop = input_schema(InstructEdit)["properties"]["references"]
    assert prop["type"] == "array" and prop["maxItems"] == 3 and prop["items"] == {"type": "string"}
    assert function_spec(InstructEdit)["function"]["parameters"]["properties"]["references"]["type"] == "array"


def _vchat(tmp_path: Path, cache: Path, tier: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = gf.env_for_subprocess(
        {
            "VCHAT_OUT": str(tmp_path / "out"),
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "HF_HUB_CACHE": str(cache),
            "VCHAT_TIER": tier,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "vchat", *args], capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path
    )


def test_vchat_run_instruct_edit_with_a_reference_in_the_current_tier(tmp_path: Path, cache: Path) -> None:
    _photo(tmp_path, "a.png", 100, 75, 0)
    _photo(tmp_path, "b.png", 80, 80, 1)
    edit = ["--arg", "instruction=put the square from the second image on the first", "--arg", "steps=1"]
    out = _vchat(tmp_path, cache, "current", "run", "--tool", "instruct_edit", "-i", "a.png", "-i", "b.png", *edit)
    assert out.returncode == 0, out.stderr
    folder = next((tmp_path / "out").iterdir())
    lines = [json.loads(line) for line in (folder / "session.jsonl").read_text().splitlines()]
    made = [r["image"] for r in lines if r.get("type") == "image" and r["image"].get("tool") == "instruct_edit"]
    assert len(made) == 1 and made[0]["parents"] == ["img1", "img2"]
    assert made[0]["params"]["model"] == KLEIN_ID and made[0]["params"]["tier"] == "current"
    assert made[0]["params"]["image"] == "img1" and made[0]["params"]["references"] == ["img2"]
    record = read_png_record(Path(made[0]["path"]))
    assert record is not None and record["params"]["model"] == KLEIN_ID


def test_vchat_run_with_a_reference_in_the_classic_tier_is_a_one_line_error(tmp_path: Path, cache: Path) -> None:
    _photo(tmp_path, "a.png", 64, 64, 0)
    _photo(tmp_path, "b.png", 64, 64, 1)
    args = ["run", "--tool", "instruct_edit", "-i", "a.png", "-i", "b.png", "--arg", "instruction=add the dog"]
    out = _vchat(tmp_path, cache, "classic", *args)
    assert out.returncode != 0
    assert "cannot use reference images in the classic tier" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_mcp_confines_every_reference_like_a_single_image(tmp_path: Path) -> None:
    from tests.helpers import make_session, write_photo

    from vchat.errors import UnsafePathError
    from vchat.mcp_server.inputs import ImageInputs, Roots
    from vchat.tools.generation.instruct import InstructEdit

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    write_photo(allowed, "a.png")
    write_photo(allowed, "b.png")
    secret = write_photo(outside, "secret.png")
    inputs = ImageInputs(make_session(tmp_path), Roots([allowed]))
    bound = inputs.bind(InstructEdit, {"image": "a.png", "instruction": "x", "references": ["b.png"]})
    assert bound["image"] == "img1" and bound["references"] == ["img2"]
    with pytest.raises(UnsafePathError):
        inputs.bind(InstructEdit, {"image": "a.png", "instruction": "x", "references": [str(secret)]})


def test_components_in_tier_name_klein_only_where_a_tool_switches() -> None:
    from vchat.runtime.catalog import KLEIN_SHARED
    from vchat.tools.generation.klein import components_in_tier
    from vchat.tools.registry import tool_class

    for name in SWITCHED:
        tool = tool_class(name)
        assert tool is not None
        assert set(KLEIN_SHARED) <= set(components_in_tier(tool, "current"))
        assert not set(KLEIN_SHARED) & set(components_in_tier(tool, "classic"))
    canny = tool_class("generate_from_canny")
    assert canny is not None and components_in_tier(canny, "current") == components_in_tier(canny, "classic")
