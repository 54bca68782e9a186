"""The model-free tools end to end through a session: outputs, sizes, lineage, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.helpers import make_session, write_photo

from vchat.errors import ToolInputError
from vchat.tools.registry import FAMILY_CLASSES, TOOL_CLASSES, all_tools, tool_class


@pytest.fixture
def session(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = make_session(tmp_path)
    s.attach(write_photo(tmp_path, width=64, height=48))
    return s


def test_registry_names_are_unique_verb_object() -> None:
    names = [cls.name for cls in TOOL_CLASSES]
    assert len(names) == len(set(names))
    assert all(name == name.lower() and "_" in name for name in names)
    assert tool_class("canny_edges") is not None and tool_class("nope") is None
    assert len(all_tools()) == len(TOOL_CLASSES) + len(FAMILY_CLASSES)
    assert tool_class("detect_map") is not None


def test_canny_finds_the_square(session) -> None:  # type: ignore[no-untyped-def]
    step = session.run_tool("canny_edges", named={"image": "img1", "low": "50", "high": "150"})
    ref = step.images[0]
    with Image.open(ref.path) as img:
        arr = np.asarray(img.convert("L"))
    assert img.size == (64, 48)
    assert arr[12, 16:48].max() == 255  # the square's top edge
    assert arr[0:5, 0:5].max() == 0
    assert ref.parents == ("img1",) and ref.params == {"low": 50, "high": 150}


def test_canny_refuses_inverted_thresholds(session) -> None:  # type: ignore[no-untyped-def]
    step = session.run_tool("canny_edges", named={"image": "img1", "low": "200", "high": "100"})
    assert step.observation == "canny_edges failed: low threshold (200) must not exceed high threshold (100)"
    assert not step.images


@pytest.mark.parametrize(
    ("args", "size"),
    [
        ({"width": "32"}, (32, 24)),
        ({"height": "96"}, (128, 96)),
        ({"scale": "0.5"}, (32, 24)),
        ({"width": "10", "height": "10"}, (10, 10)),
    ],
)
def test_resize(session, args: dict[str, str], size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    step = session.run_tool("resize_image", named={"image": "img1", **args})
    assert (step.images[0].width, step.images[0].height) == size


def test_resize_needs_a_target(session) -> None:  # type: ignore[no-untyped-def]
    assert "give a width" in (session.run_tool("resize_image", "img1").observation or "")


def test_crop_and_its_bounds(session) -> None:  # type: ignore[no-untyped-def]
    step = session.run_tool("crop_image", '{"image": "img1", "left": 16, "top": 12, "right": 48, "bottom": 36}')
    assert (step.images[0].width, step.images[0].height) == (32, 24)
    step = session.run_tool("crop_image", '{"image": "img1", "left": 0, "top": 0, "right": 65, "bottom": 10}')
    assert "goes outside" in (step.observation or "")


def test_rotate_right_angle_is_lossless(session) -> None:  # type: ignore[no-untyped-def]
    step = session.run_tool("rotate_image", "img1, 90")
    ref = step.images[0]
    assert (ref.width, ref.height) == (48, 64)
    back = session.run_tool("rotate_image", f"{ref.handle}, -90").images[0]
    with Image.open(back.path) as a, Image.open(session.store.get("img1").path) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_rotate_any_angle_grows_canvas(session) -> None:  # type: ignore[no-untyped-def]
    ref = session.run_tool("rotate_image", "img1, 45").images[0]
    assert ref.width > 64 and ref.height > 48


def test_flip_and_grayscale(session) -> None:  # type: ignore[no-untyped-def]
    flipped = session.run_tool("flip_image", "img1, vertical").images[0]
    assert flipped.params == {"direction": "vertical"}
    gray = session.run_tool("grayscale_image", flipped.handle).images[0]
    assert gray.mode == "L"
    assert [r.handle for r in session.store.ancestors(gray.handle)] == ["img2", "img1"]


def test_bad_choice_is_refused(session) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ToolInputError, match="horizontal, vertical"):
        session.run_tool("flip_image", "img1, diagonal")
