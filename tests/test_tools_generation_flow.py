"""Every generation tool through the agent and the CLI: scripted turns, cancellation, missing weights, degraded runs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tests import gen_fixtures as gf
from tests.helpers import act, answer, photo

from vchat.errors import Cancelled, ModelLoadError, ToolUnavailable
from vchat.store.refs import read_png_record
from vchat.tools.perception import grounding

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")

# tool -> (input image: a photo or a condition map, its arguments besides image, seed and steps)
CASES: dict[str, tuple[Image.Image | None, dict[str, Any]]] = {
    "generate_image": (None, {"prompt": "a red car", "width": 64, "height": 64}),
    "instruct_edit": (photo(64, 64), {"instruction": "make it winter"}),
    "remove_object": (photo(64, 64), {"object": "square"}),
    "replace_object": (photo(64, 64), {"object": "square", "replacement": "a cat"}),
    **{
        f"generate_from_{name}": (gf.MAPS[name](), {"prompt": "a house"})
        for name in ("canny", "lines", "hed", "scribble", "pose", "segmentation", "depth", "normal")
    },
    "extend_image": (photo(64, 48), {"factor": 1.5, "prompt": "a field"}),
}


@pytest.fixture(scope="module")
def models() -> Iterator[Any]:
    yield from gf.module_models()


@pytest.fixture(autouse=True)
def found_square(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grounding DINO finds the test photo's square, SAM fills the box (tiny random models find nothing stable)."""
    box = (16.0, 16.0, 48.0, 48.0)
    monkeypatch.setattr(grounding, "detect_boxes", lambda *a, **k: [grounding.Detection("square", 0.9, box)])

    def fill(ctx: Any, image: Image.Image, boxes: Any, **kwargs: Any) -> Image.Image:
        mask = Image.new("L", image.size, 0)
        mask.paste(255, tuple(round(v) for v in boxes[0].box))
        return mask

    monkeypatch.setattr(grounding, "segment_boxes", fill)


def _session(tmp_path: Path, models: Any, tool: str, replies: list[str] | None = None) -> tuple[Any, dict[str, Any]]:
    image, args = CASES[tool]
    session = gf.gen_session(tmp_path, models, replies)
    if image is not None:
        image.save(tmp_path / "input.png")
        session.attach(tmp_path / "input.png")
        args = {"image": "img1", **args}
    return session, {**args, **gf.FAST}


@pytest.mark.parametrize("tool", sorted(CASES))
def test_each_tool_through_the_agent(tmp_path: Path, models: Any, tool: str) -> None:
    _image, args = CASES[tool]
    handle = "img1" if _image is None else "img2"
    call = json.dumps({**({"image": "img1"} if _image is not None else {}), **args, **gf.FAST})
    session, _ = _session(tmp_path, models, tool, [act(tool, call), answer(f"Here it is: {handle}.")])
    steps = list(session.turn("please do it"))
    kinds = [step.kind for step in steps]
    assert kinds == ["action", "observation", "final"], [s.observation for s in steps]
    observation = steps[1]
    assert observation.images and observation.images[0].handle == handle, observation.observation
    assert observation.images[0].seed == 7 and (observation.observation or "").endswith(f"New image {handle}.")
    assert str(observation.images[0].path) not in (observation.observation or "")  # handles, not paths
    assert steps[2].flagged == []
    # The model saw the observation with the new handle in its next request.
    assert f"New image {handle}" in session.llm.calls[1][-1]["content"]


@pytest.mark.parametrize("tool", sorted(CASES))
def test_cancel_stops_within_a_step_and_writes_nothing(tmp_path: Path, models: Any, tool: str) -> None:
    session, args = _session(tmp_path, models, tool)
    images = len(session.store)
    seen, observers = gf.cancel_after_first_step(session)
    with pytest.raises(Cancelled):
        session.run_tool(tool, named=args, observers=observers)
    denoising = [done for done, _total, label in seen if label == "denoising"]
    assert denoising == [1]  # stopped right after the first of two steps
    left = [name for name in gf.files_in(session.folder) if name != "session.jsonl"]
    assert left == (["img1.png"] if images else [])  # no output, no temp file
    assert len(session.store) == images


@pytest.mark.parametrize("tool", sorted(CASES))
def test_missing_weights_say_so_and_forbid_substitutes(
    tmp_path: Path, models: Any, tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vchat.runtime import ModelManager

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    session, args = _session(tmp_path, ModelManager(device="cpu", dtype="float32"), tool)
    monkeypatch.setattr(grounding, "detect_boxes", _raise_missing)
    step = session.run_tool(tool, named=args)
    assert step.observation.startswith(f"{tool} failed: model "), step.observation
    assert "is not downloaded (HF_HUB_OFFLINE is set)" in step.observation
    assert step.observation.endswith(ToolUnavailable.for_model) and not step.images


def _raise_missing(*args: Any, **kwargs: Any) -> Any:
    raise ModelLoadError("model grounding_dino (IDEA-Research/grounding-dino-tiny) is not downloaded")


def test_out_of_memory_says_so(tmp_path: Path, models: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def oom(*args: Any, **kwargs: Any) -> Any:
        raise ModelLoadError("out of memory on cuda:0 running generate_image even after retrying degraded")

    session, args = _session(tmp_path, models, "generate_image")
    monkeypatch.setattr(models, "run", oom)
    step = session.run_tool("generate_image", named=args)
    assert step.observation == (
        "generate_image failed: out of memory on cuda:0 running generate_image even after retrying degraded; "
        + ToolUnavailable.for_model
    )


def test_a_degraded_run_is_noted(tmp_path: Path, models: Any) -> None:
    from tests.zoo import SimulatedBackend

    from vchat.runtime import ModelManager

    # A pretend 1 MB accelerator: the SD parts cannot all be resident, so they are swapped per call.
    small = ModelManager(device="sim:0", dtype="float32", vram_budget=1_000_000, backend=SimulatedBackend())
    session, args = _session(tmp_path, small, "generate_image")
    step = session.run_tool("generate_image", named=args)
    assert step.images and step.degraded is not None
    assert f"(note: {step.degraded})" in (step.observation or "")
    small.clear()


def _vchat(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = gf.env_for_subprocess({"VCHAT_OUT": str(tmp_path / "out"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    return subprocess.run(
        [sys.executable, "-m", "vchat", *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )


@pytest.mark.slow
def test_vchat_run_tool_in_a_subprocess(tmp_path: Path) -> None:
    photo(100, 75).save(tmp_path / "in.png")
    args = ["--arg", "prompt=a glass house", "--arg", "steps=2", "--arg", "seed=11", "--json"]
    out = _vchat(tmp_path, "run", "--tool", "generate_from_canny", "-i", "in.png", *args)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    made = data["images"][1]
    assert made["tool"] == "generate_from_canny" and made["parents"] == ["img1"]
    record = read_png_record(Path(made["path"]))
    assert record is not None and record["seed"] == 11 and (record["width"], record["height"]) == (100, 75)
    assert record["params"]["condition_source"] == "detected"


@pytest.mark.slow
def test_vchat_run_with_the_scripted_backend_in_a_subprocess(tmp_path: Path) -> None:
    photo(64, 64).save(tmp_path / "in.png")
    call = {"image": "img1", "instruction": "make it look like winter", "steps": 2, "seed": 5}
    script = tmp_path / "script.json"
    script.write_text(json.dumps([act("instruct_edit", json.dumps(call)), answer("Winter is in img2.")]))
    out = _vchat(tmp_path, "run", "make it winter", "-i", "in.png", "--llm", f"scripted:{script}", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["final"] == "Winter is in img2." and data["images"][1]["tool"] == "instruct_edit"
    record = read_png_record(Path(data["images"][1]["path"]))
    assert record is not None and record["seed"] == 5 and record["params"]["instruction"] == call["instruction"]
