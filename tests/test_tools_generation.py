"""generate_image, instruct_edit and extend_image end to end on tiny SD models (64 px, 2 steps, CPU)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests import gen_fixtures as gf
from tests.helpers import write_photo

from vchat.errors import ToolError, ToolInputError, ToolUnavailable
from vchat.store.refs import read_png_record
from vchat.tools.generation.generate import GenerateImage

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def models() -> Iterator[Any]:
    yield from gf.module_models()


@pytest.fixture
def session(tmp_path: Path, models: Any) -> Any:
    return gf.photo_session(tmp_path, models)


def _generate(session: Any, **extra: Any) -> Any:
    args = {"prompt": "a red car", "width": 64, "height": 64, **gf.FAST, **extra}
    return session.run_tool("generate_image", named=args)


@pytest.mark.slow
def test_generate_image_records_seed_params_and_lineage(session: Any) -> None:
    step = _generate(session)
    assert step.observation.startswith("Generated a 64x64 image of 'a red car' (seed 7, 2 steps"), step.observation
    (ref,) = step.images
    with Image.open(ref.path) as img:
        assert (img.size, img.mode) == ((64, 64), "RGB")
    assert ref.seed == 7 and ref.parents == () and ref.tool == "generate_image"
    sampled = {"prompt": "a red car", "width": 64, "height": 64, "steps": 2, "guidance": 7.5}
    made_by = {"tier": "classic", "model": "stable-diffusion-v1-5/stable-diffusion-v1-5"}
    assert ref.params == {**sampled, **made_by}
    record = read_png_record(ref.path)
    assert record is not None and record["seed"] == 7 and record["params"]["prompt"] == "a red car"
    transcript = (session.folder / "session.jsonl").read_text().splitlines()
    assert any(json.loads(line).get("image", {}).get("seed") == 7 for line in transcript)


def test_same_seed_same_image_other_seed_other_image(session: Any) -> None:
    first, second = _generate(session), _generate(session)
    other = _generate(session, seed=8)
    assert np.array_equal(gf.pixels(first.images[0]), gf.pixels(second.images[0]))
    assert not np.array_equal(gf.pixels(first.images[0]), gf.pixels(other.images[0]))


def test_random_seed_is_recorded_and_reproduces(session: Any) -> None:
    step = _generate(session, seed=-1)
    seed = step.images[0].seed
    assert isinstance(seed, int) and f"seed {seed}" in step.observation
    again = _generate(session, seed=seed)
    assert np.array_equal(gf.pixels(step.images[0]), gf.pixels(again.images[0]))


def test_default_size_is_512(session: Any) -> None:
    step = session.run_tool("generate_image", named={"prompt": "a lake", "steps": 1, "seed": 1})
    assert (step.images[0].width, step.images[0].height) == (512, 512)


def test_odd_sizes_round_to_multiples_of_8(session: Any) -> None:
    step = _generate(session, width=100, height=70)
    assert (step.images[0].width, step.images[0].height) == (96, 72)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"width": 32}, "width must be at least 64"),
        ({"height": 4096}, "height must be at most 2048"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"guidance": 99}, "guidance must be at most 30"),
        ({"seed": "lucky"}, "seed must be a number"),
        ({"prompt": ""}, "prompt must not be empty"),
    ],
)
def test_bad_inputs_are_refused_before_running(session: Any, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolInputError, match=message):
        _generate(session, **args)


def test_a_size_over_the_cap_is_scaled_down_and_said(tmp_path: Path, models: Any) -> None:
    session = gf.gen_session(tmp_path, models, sd_max_side=128)
    step = _generate(session, width=256, height=128)
    assert (step.images[0].width, step.images[0].height) == (128, 64)
    assert "256x128 was scaled down to fit the long-side cap of 128 (setting sd_max_side)." in step.observation


def test_bad_values_called_directly_raise_tool_errors(session: Any) -> None:
    tool = GenerateImage()
    base = {"prompt": "x", "width": 64, "height": 64, "guidance": 7.5, "negative_prompt": "", "seed": 1}
    with pytest.raises(ToolError, match=r"steps must be 1\.\.150"):
        tool.run(session, **base, steps=0)
    with pytest.raises(ToolError, match="prompt is empty"):
        tool.run(session, **{**base, "prompt": " "}, steps=2)


def test_instruct_edit_keeps_the_input_size(session: Any) -> None:
    args = {"image": "img1", "instruction": "make it look like winter", **gf.FAST}
    step = session.run_tool("instruct_edit", named=args)
    assert step.observation.startswith("Edited img1 as instructed ('make it look like winter'; seed 7")
    (ref,) = step.images
    assert (ref.width, ref.height, ref.mode) == (100, 75, "RGB")
    assert ref.parents == ("img1",) and ref.seed == 7
    assert ref.params["instruction"] == "make it look like winter" and ref.params["work_size"] == [96, 72]
    again = session.run_tool("instruct_edit", named=args)
    assert np.array_equal(gf.pixels(ref), gf.pixels(again.images[0]))


def test_instruct_edit_keeps_transparency(tmp_path: Path, models: Any) -> None:
    session = gf.gen_session(tmp_path, models)
    Image.new("RGBA", (64, 64), (200, 30, 30, 90)).save(tmp_path / "clear.png")
    session.attach(tmp_path / "clear.png")
    step = session.run_tool("instruct_edit", named={"image": "img1", "instruction": "make it blue", **gf.FAST})
    with Image.open(step.images[0].path) as img:
        assert img.mode == "RGBA" and img.getpixel((3, 3))[3] == 90


def test_extend_image_grows_the_canvas_and_keeps_the_original(session: Any) -> None:
    args = {"image": "img1", "factor": 2, "prompt": "a wide field", **gf.FAST}
    step = session.run_tool("extend_image", named=args)
    assert step.observation.startswith("Extended img1 from 100x75 to 200x150 (all; scene 'a wide field'")
    (ref,) = step.images
    assert (ref.width, ref.height, ref.mode) == (200, 150, "RGB")
    assert ref.parents == ("img1",) and ref.params["direction"] == "all"
    out = gf.pixels(ref)
    original = np.asarray(Image.open(session.store.get("img1").path).convert("RGB"))
    # Away from the seam (overlap plus feather) the original's pixels are untouched; at the seam they blend.
    assert np.array_equal(out[37 + 20 : 37 + 55, 50 + 20 : 50 + 80], original[20:55, 20:80])
    assert not np.array_equal(out[37:40, 50:150], original[0:3])


def test_extend_image_one_side_and_caption_prompt(session: Any) -> None:
    step = session.run_tool("extend_image", named={"image": "img1", "factor": 1.5, "direction": "left", **gf.FAST})
    (ref,) = step.images
    assert (ref.width, ref.height) == (150, 75)
    assert "prompt" in ref.params  # the BLIP caption (random words from the tiny model) became the prompt
    out = gf.pixels(ref)
    original = np.asarray(Image.open(session.store.get("img1").path).convert("RGB"))
    assert np.array_equal(out[:, 50 + 20 :], original[:, 20:])


def test_extend_image_refuses_a_huge_canvas(tmp_path: Path, models: Any) -> None:
    session = gf.gen_session(tmp_path, models, max_image_pixels=20_000)
    session.attach(write_photo(tmp_path, width=100, height=75))
    step = session.run_tool("extend_image", named={"image": "img1", "factor": 4, **gf.FAST})
    assert "too large; use a smaller factor" in step.observation and not step.images


def test_out_of_range_seed_is_an_observation(session: Any) -> None:
    step = _generate(session, seed=-5)
    assert step.observation == "generate_image failed: seed must be -1 (random) or 0..4294967295, not -5"


def test_safety_checker_on_without_one_in_the_checkpoint_refuses(tmp_path: Path, models: Any) -> None:
    # The zoo's sd15 ships no checker: "auto" skips it, "on" must not silently run unfiltered.
    session = gf.gen_session(tmp_path, models, safety_checker="on")
    step = _generate(session)
    assert step.observation.startswith("generate_image failed: safety_checker = on, but the configured sd15")
    assert step.observation.endswith(ToolUnavailable.for_model) and not step.images
    assert gf.files_in(session.folder) == ["session.jsonl"]
