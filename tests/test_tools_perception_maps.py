"""The condition detectors (lines, HED, scribble, pose, depth, normals, semantic segmentation) end to end."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests.perception_fixtures import (
    manager,
    offline_hub,
    openpose_dir,
    perception_models,
    perception_session,
)

from vchat.store.refs import read_png_record
from vchat.tools.maps import conditions
from vchat.tools.perception.ade20k import ADE20K_PALETTE
from vchat.tools.perception.depth import normal_map
from vchat.tools.util import clean_text, rgb, working_size

__all__ = ["manager", "offline_hub", "openpose_dir", "perception_models"]  # fixtures used by name

MAPS = {
    "detect_lines": r"\d+ straight lines found in img1\.",
    "detect_hed": r"HED soft edges of img1 \([\d.]+% of pixels on strong lines\)\.",
    "detect_scribble": r"Scribble of img1 \([\d.]+% of pixels on strong lines\)\.",
    "estimate_depth": r"Depth map of img1 (\(near is white, far is black\)|: no depth variation found .*)\.",
    "estimate_normals": r"Normal map of img1 \(from its estimated depth\)\.",
    "segment_semantic": r"Segmentation of img1 into \d+ classes; largest: .+\.",
}
# Input variants: ordinary, grayscale, transparent, odd and smaller than any working size.
INPUTS = {
    "rgb": {"width": 70, "height": 45},
    "gray": {"width": 64, "height": 48, "mode": "L"},
    "rgba": {"width": 64, "height": 48, "mode": "RGBA"},
    "odd": {"width": 37, "height": 83},
}


def check_map(step: Any, pattern: str, size: tuple[int, int]) -> np.ndarray:
    """One RGB output of the input's size with lineage, and an observation of one line matching `pattern`."""
    assert step.observation is not None
    text = step.observation.split("\nNew image")[0]
    assert re.fullmatch(pattern, text), step.observation
    assert len(step.images) == 1
    ref = step.images[0]
    assert ref.parents == ("img1",) and ref.tool == step.tool
    assert read_png_record(ref.path)["parents"] == ["img1"]  # type: ignore[index]
    with Image.open(ref.path) as img:
        assert img.size == size and img.mode == "RGB"
        return np.asarray(img)


@pytest.mark.parametrize("variant", list(INPUTS))
@pytest.mark.parametrize("tool", list(MAPS))
@pytest.mark.slow
def test_condition_maps(tmp_path: Path, manager: Any, perception_models: Any, tool: str, variant: str) -> None:
    image = INPUTS[variant]
    session = perception_session(tmp_path, manager, perception_models, **image)
    step = session.run_tool(tool, "img1")
    pixels = check_map(step, MAPS[tool], (image["width"], image["height"]))
    if tool == "segment_semantic":  # only palette colours, so the seg ControlNet reads classes
        colours = {tuple(c) for c in pixels.reshape(-1, 3)}
        assert colours <= set(ADE20K_PALETTE)
    if tool == "estimate_normals":  # unit normals facing the camera: blue above the middle everywhere
        assert pixels[..., 2].min() >= 127


# The perception tool whose function is each ControlNet condition's detector.
MADE_BY = {
    "canny": "canny_edges",
    "lines": "detect_lines",
    "hed": "detect_hed",
    "scribble": "detect_scribble",
    "pose": "detect_pose",
    "segmentation": "segment_semantic",
    "depth": "estimate_depth",
    "normal": "estimate_normals",
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # controlnet_aux's imports (scipy, timm)
@pytest.mark.parametrize("name", list(MADE_BY))
@pytest.mark.slow
def test_controlnet_detectors_make_the_perception_tools_maps(
    tmp_path: Path, manager: Any, perception_models: Any, monkeypatch: Any, name: str
) -> None:
    assert set(MADE_BY) == set(conditions.DETECTORS) == set(conditions.CONDITIONS)
    assert conditions.CONDITIONS[name].made_by == (MADE_BY[name],)
    if name == "pose":  # the zero test weights find nobody: a person, so the drawing is compared too
        from controlnet_aux.open_pose import BodyResult, Keypoint, PoseResult

        points = [Keypoint(0.5, 0.1 + 0.05 * i) for i in range(18)]
        person = PoseResult(BodyResult(points, total_score=18.0, total_parts=18), None, None, None)
        with manager.use("annotators.openpose") as parts:
            monkeypatch.setattr(parts["annotators.openpose"], "detect_poses", lambda pixels: [person])
    session = perception_session(tmp_path, manager, perception_models, width=70, height=45)
    image = rgb(Image.open(tmp_path / "input.png"))
    ctx = SimpleNamespace(models=manager, progress=lambda *a: None, settings=session.settings)
    made = conditions.DETECTORS[name](ctx, image, image.size, f"generate_from_{name}")  # type: ignore[arg-type]
    assert made.image.size == (70, 45) and made.image.mode == "RGB"
    step = session.run_tool(MADE_BY[name], "img1")
    if not step.images:  # the test weights may find nothing: then the ControlNet's map is black too
        assert step.observation is not None and " failed: no " in step.observation, step.observation
        assert np.asarray(made.image).max() == 0
        return
    with Image.open(step.images[0].path) as saved:
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(made.image))


@pytest.mark.slow
def test_lines_nothing_found_is_plain(tmp_path: Path, manager: Any, perception_models: Any) -> None:
    session = perception_session(tmp_path, manager, perception_models, width=70, height=45)
    step = session.run_tool("detect_lines", named={"image": "img1", "threshold": "1"})
    assert step.observation == "detect_lines failed: no straight lines found in img1 (threshold 1)"


@pytest.mark.slow
def test_pose_nothing_found_then_one_person(
    tmp_path: Path, manager: Any, perception_models: Any, monkeypatch: Any
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from controlnet_aux.open_pose import BodyResult, Keypoint, PoseResult

    session = perception_session(tmp_path, manager, perception_models, width=70, height=45)
    step = session.run_tool("detect_pose", "img1")  # the test weights are zero: nobody is there
    assert step.observation == "detect_pose failed: no person found in img1" and not step.images

    # A person where the real network would put one: the drawing and the count are what is under test.
    points = [Keypoint(0.5, 0.1 + 0.05 * i) for i in range(18)]
    person = PoseResult(BodyResult(points, total_score=18.0, total_parts=18), None, None, None)
    with manager.use("annotators.openpose") as parts:
        monkeypatch.setattr(parts["annotators.openpose"], "detect_poses", lambda pixels: [person])
    step = session.run_tool("detect_pose", "img1")
    pixels = check_map(step, r"Pose of 1 person found in img1\.", (70, 45))
    coloured = pixels.max(axis=-1).astype(int) - pixels.min(axis=-1) > 60
    assert coloured.any() and not coloured.all()


@pytest.mark.slow
def test_flat_image_has_no_depth_variation(tmp_path: Path, manager: Any, perception_models: Any) -> None:
    session = perception_session(tmp_path, manager, perception_models, width=64, height=48)
    flat = tmp_path / "flat.png"
    Image.new("RGB", (64, 48), (90, 90, 90)).save(flat)
    session.attach(flat)
    step = session.run_tool("estimate_depth", "img2")
    assert step.observation is not None and step.images
    # A random network may still vary over a flat input; if it does not, the text must say so.
    depth = np.asarray(Image.open(step.images[0].path))
    if depth.max() == depth.min():
        assert "no depth variation found" in step.observation


def test_normal_map_follows_the_slope() -> None:
    ramp = np.tile(np.linspace(0, 50, 32, dtype=np.float32), (16, 1))  # nearer to the right
    normals = normal_map(ramp)
    assert normals.shape == (16, 32, 3) and normals.dtype == np.uint8
    right = normals[8, 24]
    assert right[0] > 140 and 120 <= right[1] <= 135 and right[2] > 127  # x slope in red, flat in green
    assert tuple(normals[8, 2]) == (127, 127, 255)  # the far 40%: background, facing the camera


def test_helpers() -> None:
    assert working_size((70, 45)) == (64, 64)
    assert working_size((1024, 768)) == (704, 512)
    assert working_size((37, 83)) == (64, 64)
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert rgb(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent pixels become white paper
    assert rgb(Image.new("L", (2, 2), 7)).mode == "RGB"
    assert clean_text("[DEC] a cat [SEP] [PAD] on a mat .") == "a cat on a mat"
    assert clean_text("<|endoftext|>  ") == ""
