"""The tools that switch model by tier (SAM 3, Depth Anything V2), run in both tiers on tiny models by default id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests.perception_fixtures import manager, offline_hub, openpose_dir, perception_models, perception_session

from vchat.store.refs import read_png_record
from vchat.tools.perception import masks, sam3

__all__ = ["manager", "offline_hub", "openpose_dir", "perception_models"]  # fixtures used by name

TIERS = ("classic", "current")
# The model each tier's run must name in its lineage (the current tier's by default hub id, from the fake cache).
CURRENT_IDS = {
    "segment_object": "facebook/sam3",
    "detect_objects": "facebook/sam3",
    "estimate_depth": "depth-anything/Depth-Anything-V2-Small-hf",
}


def tiered(tmp_path: Path, manager: Any, models: dict[str, str], tier: str) -> Any:
    session = perception_session(tmp_path, manager, models, width=70, height=45)
    session.settings.tier = tier
    return session


def loaded(manager: Any) -> set[str]:
    return set(manager.resident())


@pytest.mark.parametrize("tier", TIERS)
def test_segment_object_in_both_tiers(tier: str, tmp_path: Path, manager: Any, perception_models: Any) -> None:
    session = tiered(tmp_path, manager, perception_models, tier)
    manager.clear()
    step = session.run_tool("segment_object", '{"image": "img1", "text": "cat", "threshold": 0.05}')
    assert step.images, step.observation
    record = read_png_record(step.images[0].path)
    assert record is not None
    params = record["params"]
    used = loaded(manager)
    if tier == "current":
        assert params["model"] == CURRENT_IDS["segment_object"] and params["tier"] == "current"
        assert "sam3" in used and "grounding_dino" not in used and "sam" not in used
    else:
        assert "model" not in params
        assert {"grounding_dino", "sam"} <= used and "sam3" not in used
    with Image.open(step.images[0].path) as img:
        mask = np.asarray(img) > 0
    assert img.size == (70, 45) and 0 < mask.mean() <= 1


@pytest.mark.parametrize("tier", TIERS)
def test_detect_objects_in_both_tiers(tier: str, tmp_path: Path, manager: Any, perception_models: Any) -> None:
    session = tiered(tmp_path, manager, perception_models, tier)
    manager.clear()
    step = session.run_tool("detect_objects", '{"image": "img1", "text": "cat, dog", "threshold": 0.05}')
    assert step.images, step.observation
    assert step.observation.startswith("Found "), step.observation
    used = loaded(manager)
    record = read_png_record(step.images[0].path)
    assert record is not None
    if tier == "current":
        assert record["params"]["model"] == CURRENT_IDS["detect_objects"]
        assert "sam3" in used and "grounding_dino" not in used
    else:
        assert "grounding_dino" in used and "sam3" not in used


def test_sam3_lists_every_instance_with_score_and_box(tmp_path: Path, manager: Any, perception_models: Any) -> None:
    session = tiered(tmp_path, manager, perception_models, "current")
    image = session.store.load(session.store.resolve("img1"))
    found = sam3.find_instances(session, image, "cat, dog", threshold=0.05)
    labels = {d.label for d in found.found}
    assert labels <= {"cat", "dog"} and found.found
    scores = [d.score for d in found.found]
    assert scores == sorted(scores, reverse=True) and all(0.05 < s <= 1 for s in scores)
    for det in found.found:
        x0, y0, x1, y1 = det.box
        assert 0 <= x0 < x1 <= 70 and 0 <= y0 < y1 <= 45
    assert found.union.shape == (45, 70)
    # A threshold above every score finds nothing, and the union is then all outside.
    none = sam3.find_instances(session, image, "cat", threshold=0.9999)
    assert none.found == [] and (none.union < 0).all()


def test_find_mask_uses_sam3_in_the_current_tier(tmp_path: Path, manager: Any, perception_models: Any) -> None:
    session = tiered(tmp_path, manager, perception_models, "current")
    image = session.store.load(session.store.resolve("img1"))
    ctx = session
    found = masks.find_mask(ctx, image, "cat", "remove_object")
    assert found.method == "sam3" and not found.unavailable
    raw = masks.sam3_mask(ctx, image, "cat", "remove_object")
    assert raw.mask.shape == (45, 70)
    # The editing tools get the dilated mask: it holds the raw one.
    assert (found.mask >= raw.mask).all() and found.mask.sum() >= raw.mask.sum()
    session.settings.tier = "classic"
    assert masks.find_mask(ctx, image, "cat", "remove_object").method != "sam3"


@pytest.mark.parametrize("tier", TIERS)
def test_estimate_depth_in_both_tiers(tier: str, tmp_path: Path, manager: Any, perception_models: Any) -> None:
    session = tiered(tmp_path, manager, perception_models, tier)
    manager.clear()
    step = session.run_tool("estimate_depth", "img1")
    assert step.images, step.observation
    record = read_png_record(step.images[0].path)
    assert record is not None
    used = loaded(manager)
    if tier == "current":
        assert record["params"] == {"model": CURRENT_IDS["estimate_depth"], "tier": "current"}
        assert "depth_anything" in used and "depth" not in used
    else:
        assert record["params"]["tier"] == "classic" and record["params"]["model"] == "Intel/dpt-hybrid-midas"
        assert "depth" in used and "depth_anything" not in used
    with Image.open(step.images[0].path) as img:
        assert img.size == (70, 45)


def test_normals_stay_on_dpt_in_the_current_tier(tmp_path: Path, manager: Any, perception_models: Any) -> None:
    session = tiered(tmp_path, manager, perception_models, "current")
    manager.clear()
    step = session.run_tool("estimate_normals", "img1")
    assert step.images, step.observation
    used = loaded(manager)
    assert "depth" in used and "depth_anything" not in used


def test_depth_map_for_the_controlnet_follows_the_tier(tmp_path: Path, manager: Any, perception_models: Any) -> None:
    from vchat.tools.perception.depth import depth_map

    session = tiered(tmp_path, manager, perception_models, "current")
    image = session.store.load(session.store.resolve("img1"))
    manager.clear()
    made = depth_map(session, image, (64, 48), "generate_from_depth")
    assert made.image.size == (64, 48)
    assert "depth_anything" in loaded(manager)


def test_sam3_weights_missing_is_one_line(tmp_path: Path, offline_hub: Path) -> None:
    from vchat.runtime import ModelManager

    missing = str(tmp_path / "no-such-folder")
    own = ModelManager({"sam3": missing}, device="cpu", dtype="float32")
    session = tiered(tmp_path, own, {"sam3": missing}, "current")
    step = session.run_tool("segment_object", '{"image": "img1", "text": "cat"}')
    assert not step.images
    text = step.observation or ""
    assert "sam3" in text and missing in text and "\n" not in text.strip(), text
