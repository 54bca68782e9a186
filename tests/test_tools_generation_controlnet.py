"""The eight generate_from_<condition> tools: maps as is, maps from photos, the condition reaching the UNet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests import gen_fixtures as gf
from tests.helpers import write_photo

# controlnet_aux's imports (timm, torch.jit) and numpy 2.4 with the UniPC scheduler warn; none of it is ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")

TOOLS = {
    "canny": "generate_from_canny",
    "lines": "generate_from_lines",
    "hed": "generate_from_hed",
    "scribble": "generate_from_scribble",
    "pose": "generate_from_pose",
    "segmentation": "generate_from_segmentation",
    "depth": "generate_from_depth",
    "normal": "generate_from_normal",
}
# Random-weight annotators may honestly find nothing in a photo; the others always produce a map.
MAY_FIND_NOTHING = {"lines": "no straight lines found", "scribble": "no strokes found", "hed": "no edges found"}


@pytest.fixture(scope="module")
def models() -> Iterator[Any]:
    yield from gf.module_models()


@pytest.fixture
def pose(models: Any) -> gf.FakePose:
    detector = gf.FakePose()
    gf.install_fake_pose(models, detector)
    return detector


def _session(tmp_path: Path, models: Any, image: Image.Image | None = None, **settings: Any) -> Any:
    session = gf.gen_session(tmp_path, models, **settings)
    if image is None:
        session.attach(write_photo(tmp_path, width=100, height=75))
    else:
        tmp_path.mkdir(parents=True, exist_ok=True)
        image.save(tmp_path / "input.png")
        session.attach(tmp_path / "input.png")
    return session


def _run(session: Any, name: str, **extra: Any) -> Any:
    return session.run_tool(TOOLS[name], named={"image": "img1", "prompt": "a house", **gf.FAST, **extra})


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_a_condition_map_is_used_as_is(tmp_path: Path, models: Any, pose: gf.FakePose, name: str) -> None:
    session = _session(tmp_path, models, gf.MAPS[name]())
    step = _run(session, name)
    assert step.observation.startswith("Generated 'a house' following the "), step.observation
    assert "(img1 used as the map; seed 7, 2 steps, guidance 9" in step.observation
    (ref,) = step.images
    assert (ref.width, ref.height, ref.mode) == (64, 64, "RGB")
    assert ref.parents == ("img1",) and ref.seed == 7 and ref.tool == TOOLS[name]
    assert ref.params["condition"] == name and ref.params["condition_source"] == "as_is"
    assert ref.params["prompt"] == "a house, best quality, extremely detailed"
    assert "lowres" in ref.params["negative_prompt"]
    assert pose.calls == 0  # no detector ran


@pytest.mark.parametrize("name", sorted(TOOLS))
@pytest.mark.slow
def test_a_photo_goes_through_the_detector(tmp_path: Path, models: Any, pose: gf.FakePose, name: str) -> None:
    session = _session(tmp_path, models)
    step = _run(session, name, input_kind="photo")
    if not step.images:
        assert name in MAY_FIND_NOTHING, step.observation
        expected = f"{TOOLS[name]} failed: {MAY_FIND_NOTHING[name]} in img1, so there is nothing for the ControlNet"
        assert step.observation.startswith(expected)
        return
    assert "(detected from img1;" in step.observation, step.observation
    (ref,) = step.images
    assert (ref.width, ref.height, ref.mode) == (100, 75, "RGB")
    assert ref.params["condition_source"] == "detected"
    assert pose.calls == (1 if name == "pose" else 0)


def test_auto_detects_photos_and_follows_lineage(tmp_path: Path, models: Any) -> None:
    session = _session(tmp_path, models)
    assert "(detected from img1;" in _run(session, "canny").observation
    session.run_tool("canny_edges", named={"image": "img1"})  # img3: an edge map by lineage
    step = session.run_tool("generate_from_canny", named={"image": "img3", "prompt": "a house", **gf.FAST})
    assert "(img3 used as the map;" in step.observation and step.images[0].parents == ("img3",)


def test_input_kind_map_skips_detection(tmp_path: Path, models: Any) -> None:
    session = _session(tmp_path, models)
    step = _run(session, "depth", input_kind="map")
    assert "(img1 used as the map;" in step.observation


def test_no_person_found(tmp_path: Path, models: Any) -> None:
    gf.install_fake_pose(models, gf.FakePose(people=0))
    session = _session(tmp_path, models)
    step = _run(session, "pose", input_kind="photo")
    assert step.observation == (
        "generate_from_pose failed: no person found in img1, so there is nothing for the ControlNet to follow"
    )
    assert not step.images


def test_same_seed_same_image(tmp_path: Path, models: Any) -> None:
    session = _session(tmp_path, models, gf.edge_map())
    first, second, other = _run(session, "canny"), _run(session, "canny"), _run(session, "canny", seed=8)
    assert np.array_equal(gf.pixels(first.images[0]), gf.pixels(second.images[0]))
    assert not np.array_equal(gf.pixels(first.images[0]), gf.pixels(other.images[0]))


def test_large_inputs_come_back_at_the_capped_size(tmp_path: Path, models: Any) -> None:
    session = _session(tmp_path, models, gf.edge_map(200).resize((200, 150)), sd_max_side=96)
    step = _run(session, "scribble")
    assert (step.images[0].width, step.images[0].height) == (96, 72)


@contextmanager
def live_controlnet(models: Any) -> Iterator[None]:
    """Randomise the zero-initialised output convolutions for the block, so the map changes the image."""
    import torch

    with models.use("controlnet_canny") as parts:
        convs = gf.controlnet_out_convs(parts["controlnet_canny"])
    saved = [(conv.weight.detach().clone(), conv.bias.detach().clone()) for conv in convs]
    try:
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for conv in convs:
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.5)
        yield
    finally:
        with torch.no_grad():
            for conv, (weight, bias) in zip(convs, saved, strict=True):
                conv.weight.copy_(weight)
                conv.bias.copy_(bias)


def test_the_condition_reaches_the_unet(tmp_path: Path, models: Any) -> None:
    square = gf.edge_map()
    cross = Image.new("RGB", (64, 64))
    cross.paste((255, 255, 255), (30, 0, 34, 64))
    cross.paste((255, 255, 255), (0, 30, 64, 34))

    def generate(condition: Image.Image) -> np.ndarray:
        session = _session(tmp_path / str(id(condition)), models, condition)
        return gf.pixels(_run(session, "canny").images[0])

    # A fresh ControlNet's output convolutions are zero: whatever the map, the UNet sees no difference.
    assert np.array_equal(generate(square), generate(cross))
    with live_controlnet(models):
        assert not np.array_equal(generate(square), generate(cross))


def test_transparent_photo_follows_the_same_map_as_detect_then_generate(tmp_path: Path, models: Any) -> None:
    """generate_from_canny(photo) and canny_edges then generate_from_canny(map) agree, transparency included."""
    from vchat.tools.maps.canny import canny_map

    # 96x72: already the size SD works at, so both paths detect edges at the same size.
    rgba = Image.open(write_photo(tmp_path / "src", width=96, height=72)).convert("RGBA")
    alpha = np.zeros((72, 96), dtype=np.uint8)
    alpha[10:65, 20:80] = 255  # outside is transparent: its edge against white counts, hidden colours do not
    rgba.putalpha(Image.fromarray(alpha, "L"))
    # The case matters: dropping the alpha instead of flattening it gives another map.
    assert canny_map(rgba, rgba.size).image.tobytes() != canny_map(rgba.convert("RGB"), rgba.size).image.tobytes()
    session = _session(tmp_path / "s", models, rgba)
    with live_controlnet(models):
        direct = _run(session, "canny", input_kind="photo", seed=7).images[0]
        edges = session.run_tool("canny_edges", named={"image": "img1"}).images[0]
        via_map = session.run_tool(
            "generate_from_canny",
            named={"image": edges.handle, "prompt": "a house", **gf.FAST, "input_kind": "map", "seed": 7},
        ).images[0]
    assert np.array_equal(gf.pixels(direct)[..., :3], gf.pixels(via_map)[..., :3])
