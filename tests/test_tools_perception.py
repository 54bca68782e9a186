"""Perception tools that answer in text or find objects: caption, QA, detect, segment, background removal."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests.helpers import photo
from tests.perception_fixtures import (
    manager,
    offline_hub,
    openpose_dir,
    perception_models,
    perception_session,
)

from vchat.runtime.catalog import COMPONENTS
from vchat.store.refs import read_png_record
from vchat.tools.perception import background, segment
from vchat.tools.perception.caption import caption
from vchat.tools.perception.grounding import Detection, detect_boxes, phrases_of, segment_boxes
from vchat.tools.perception.toolset import PERCEPTION_TOOLS

__all__ = ["manager", "offline_hub", "openpose_dir", "perception_models"]  # fixtures used by name

SPECIAL = re.compile(r"\[(CLS|SEP|PAD|DEC|UNK|MASK)\]|<\|")
NAMES = {
    "caption_image", "answer_question", "detect_lines", "detect_hed", "detect_scribble", "detect_pose",
    "estimate_depth", "estimate_normals", "segment_semantic", "detect_objects", "segment_anything",
    "segment_object", "remove_background",
}  # fmt: skip


@pytest.fixture
def session(tmp_path: Path, manager: Any, perception_models: dict[str, str]) -> Any:
    return perception_session(tmp_path, manager, perception_models, width=70, height=45)


def well_formed(text: str | None) -> str:
    """The tool's own text (before the 'New image' lines): one paragraph, no special tokens."""
    assert text is not None
    own = text.split("\nNew image")[0].split("\n(note:")[0]
    assert own.strip() == own and own and "\n" not in own, text
    assert not SPECIAL.search(own), text
    return own


def output(step: Any, size: tuple[int, int], mode: str) -> Image.Image:
    """The single output image of a step, checked for size, mode and lineage."""
    assert len(step.images) == 1, step.observation
    ref = step.images[0]
    assert ref.parents == ("img1",) and ref.tool == step.tool
    assert read_png_record(ref.path)["tool"] == step.tool  # type: ignore[index]
    with Image.open(ref.path) as img:
        img.load()
    assert img.size == size and img.mode == mode
    return img


def test_tool_set_names_components_and_descriptions() -> None:
    assert {cls.name for cls in PERCEPTION_TOOLS} == NAMES
    for cls in PERCEPTION_TOOLS:
        assert cls.components and all(key in COMPONENTS for key in cls.components), cls.name
        assert 40 <= len(cls.description) <= 300 and "\n" not in cls.description, cls.name
        assert cls.inputs[0].name == "image" and cls.inputs[0].kind == "image"


@pytest.mark.slow
def test_caption_is_one_clean_line(session: Any) -> None:
    step = session.run_tool("caption_image", "img1")
    text = well_formed(step.observation)
    assert text.startswith(("Caption of img1: ", "The captioning model produced no caption for img1."))
    assert not step.images


def test_empty_caption_and_answer_are_said_plainly(session: Any, manager: Any, monkeypatch: Any) -> None:
    import torch

    for key in ("blip_caption", "blip_vqa"):
        with manager.use(key, f"{key}.processor") as parts:
            tokenizer = parts[f"{key}.processor"].tokenizer
            only_special = torch.tensor([[tokenizer.bos_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id]])
            monkeypatch.setattr(parts[key], "generate", lambda only=only_special, **_: only)
    step = session.run_tool("caption_image", "img1")
    assert step.observation == "The captioning model produced no caption for img1."
    step = session.run_tool("answer_question", named={"image": "img1", "question": "what colour is it?"})
    assert step.observation == "The question-answering model gave no answer about img1."


def test_answer_question(session: Any) -> None:
    step = session.run_tool("answer_question", "img1, what colour is the square?")  # legacy comma form
    text = well_formed(step.observation)
    assert text.startswith(("Answer about img1: ", "The question-answering model gave no answer about img1."))


@pytest.mark.slow
def test_caption_function_for_attach(session: Any) -> None:
    text = caption(session, photo(40, 30).convert("RGBA"))
    assert isinstance(text, str) and "\n" not in text and not SPECIAL.search(text)


@pytest.mark.slow
def test_detect_boxes_contract(session: Any) -> None:
    image = photo(70, 45)
    found = detect_boxes(session, image, "Cat, the red car.", threshold=0.0)
    assert found and all(isinstance(d, Detection) for d in found)
    for label, score, (x0, y0, x1, y1) in found:
        assert label in ("cat", "the red car") and 0.0 < score <= 1.0
        assert 0 <= x0 < x1 <= 70 and 0 <= y0 < y1 <= 45
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    assert detect_boxes(session, image, "cat", threshold=1.0) == []
    assert phrases_of(" a Cat ;dog,, a cat\n") == ["a cat", "dog"]


def test_segment_boxes_contract(session: Any) -> None:
    image = photo(70, 45)
    mask = segment_boxes(session, image, [(10.0, 10.0, 50.0, 35.0), Detection("cat", 0.9, (0.0, 0.0, 20.0, 20.0))])
    assert mask.mode == "L" and mask.size == (70, 45)
    assert set(np.unique(np.asarray(mask))) <= {0, 255}
    assert not np.asarray(segment_boxes(session, image, [])).any()


@pytest.mark.slow
def test_detect_objects_draws_and_lists(session: Any) -> None:
    step = session.run_tool("detect_objects", named={"image": "img1", "text": "cat, dog", "threshold": "0"})
    text = well_formed(step.observation)
    assert re.match(r"Found \d+ objects? in img1: (cat|dog) \d\.\d\d at \[\d+, \d+, \d+, \d+\]", text), text
    drawn = np.asarray(output(step, (70, 45), "RGB"))
    assert (drawn != np.asarray(photo(70, 45))).any()


@pytest.mark.slow
def test_nothing_detected_is_said_plainly(session: Any) -> None:
    step = session.run_tool("detect_objects", named={"image": "img1", "text": "cat, dog", "threshold": "1"})
    assert step.observation == "detect_objects failed: no cat or dog found in img1" and not step.images
    step = session.run_tool("segment_object", named={"image": "img1", "text": "cat", "threshold": "1"})
    assert step.observation == "segment_object failed: no cat found in img1" and not step.images
    step = session.run_tool("detect_objects", named={"image": "img1", "text": " , "})
    assert step.observation is not None and "say which objects to look for" in step.observation


@pytest.mark.parametrize(("style", "mode"), [("mask", "L"), ("overlay", "RGB"), ("cutout", "RGBA")])
@pytest.mark.slow
def test_segment_object_outputs(session: Any, style: str, mode: str) -> None:
    args = {"image": "img1", "text": "square", "threshold": "0", "output": style}
    step = session.run_tool("segment_object", named=args)
    if step.images:
        text = well_formed(step.observation)
        assert text.startswith(f"{style.capitalize()} of square in img1: ")
        output(step, (70, 45), mode)
    else:  # a random SAM may draw nothing inside the box; then that is what the model hears
        assert "SAM returned an empty mask" in str(step.observation)


@pytest.mark.slow
def test_segment_anything_overlay_and_nothing_found(session: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(segment, "POINTS_PER_SIDE", 6)  # a coarse grid: the filters, not the grid, are under test
    monkeypatch.setattr(segment, "STABILITY", 1.0)  # stability is at most 1: nothing can pass
    step = session.run_tool("segment_anything", "img1")
    assert step.observation == "segment_anything failed: no distinct regions found in img1"
    monkeypatch.setattr(segment, "STABILITY", 0.0)  # 0 disables both filters: the random model's masks pass
    monkeypatch.setattr(segment, "PRED_IOU", 0.0)
    step = session.run_tool("segment_anything", "img1")
    assert re.fullmatch(
        r"(1 region|\d+ regions) found in img1 \(the largest covers [\d.]+% of it\)\.", well_formed(step.observation)
    )
    output(step, (70, 45), "RGB")


def test_remove_background(session: Any, monkeypatch: Any) -> None:
    step = session.run_tool("remove_background", "img1")
    if step.images:
        assert well_formed(step.observation).startswith("Background removed from img1: the subject kept covers")
        alpha = np.asarray(output(step, (70, 45), "RGBA"))[..., 3]
        assert alpha.max() > 0
    else:
        assert "SAM found no subject" in str(step.observation)
    monkeypatch.setattr(background, "MIN_PEAK", 1.01)
    step = session.run_tool("remove_background", "img1")
    assert step.observation == (
        "remove_background failed: no main subject found in img1; name it and use segment_object instead"
    )


def test_subject_box_follows_the_peak_region() -> None:
    heat = np.zeros((40, 60), np.float32)
    heat[10:20, 30:50] = 0.8  # the subject
    heat[30:35, 2:6] = 0.5  # a separate, weaker blob
    assert background.subject_box(heat, (120, 80)) == (60.0, 20.0, 100.0, 40.0)
    assert background.subject_box(heat * 0, (120, 80)) is None


@pytest.mark.parametrize("mode", ["L", "RGBA"])
@pytest.mark.slow
def test_odd_inputs_through_grounding_tools(tmp_path: Path, manager: Any, perception_models: Any, mode: str) -> None:
    session = perception_session(tmp_path, manager, perception_models, width=37, height=83, mode=mode)
    step = session.run_tool(
        "segment_object", named={"image": "img1", "text": "thing", "output": "cutout", "threshold": "0"}
    )
    if step.images:
        cut = np.asarray(output(step, (37, 83), "RGBA"))
        if mode == "RGBA":  # existing transparency is kept: a pixel transparent before stays transparent
            source = np.asarray(Image.open(tmp_path / "input.png"))
            assert (cut[..., 3] <= source[..., 3]).all()
    step = session.run_tool("detect_objects", named={"image": "img1", "text": "thing", "threshold": "0"})
    output(step, (37, 83), "RGB")
