"""Perception tools driven by the agent (scripted model) and from the command line (`vchat run`, `--tool`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import act, answer, write_photo
from tests.perception_fixtures import (
    manager,
    offline_hub,
    openpose_dir,
    perception_models,
    perception_session,
)

__all__ = ["manager", "offline_hub", "openpose_dir", "perception_models"]  # fixtures used by name


def observations(steps: list[Any]) -> list[str]:
    return [s.observation for s in steps if s.kind == "observation"]


@pytest.mark.slow
def test_agent_captions_then_asks(tmp_path: Path, manager: Any, perception_models: Any) -> None:
    replies = [
        act("caption_image", "img1"),
        act("answer_question", "img1, what colour is the square?"),
        answer("A yellow square on blue."),
    ]
    session = perception_session(tmp_path, manager, perception_models, replies, width=70, height=45)
    steps = list(session.turn("what is in img1?"))
    seen = observations(steps)
    assert seen[0].startswith(("Caption of img1: ", "The captioning model produced no caption"))
    assert seen[1].startswith(("Answer about img1: ", "The question-answering model gave no answer"))
    assert steps[-1].kind == "final" and steps[-1].text == "A yellow square on blue."


@pytest.mark.slow
def test_agent_hears_nothing_found(tmp_path: Path, manager: Any, perception_models: Any) -> None:
    replies = [act("detect_objects", '{"image": "img1", "text": "cat", "threshold": 1}'), answer("There is no cat.")]
    session = perception_session(tmp_path, manager, perception_models, replies, width=70, height=45)
    steps = list(session.turn("find the cat"))
    assert observations(steps) == ["detect_objects failed: no cat found in img1"]
    sent = session.llm.calls[-1][-1]["content"]
    assert "Observation: detect_objects failed: no cat found in img1" in sent


@pytest.mark.slow
def test_agent_chains_a_cutout_into_a_caption(tmp_path: Path, manager: Any, perception_models: Any) -> None:
    replies = [
        act("segment_object", '{"image": "img1", "text": "square", "output": "cutout", "threshold": 0}'),
        act("caption_image", "img2"),
        answer("Done."),
    ]
    session = perception_session(tmp_path, manager, perception_models, replies, width=70, height=45)
    steps = list(session.turn("cut out the square and describe it"))
    first, second = observations(steps)
    if "New image img2" in first:  # the RGBA cutout is a valid input for the next tool
        assert second.startswith(("Caption of img2: ", "The captioning model produced no caption for img2"))
        assert session.store.get("img2").mode == "RGBA"


def vchat(tmp_path: Path, hub: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_", "HF_"))}
    env.update(
        HF_HUB_CACHE=str(hub),
        HF_HUB_OFFLINE="1",
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        VCHAT_OUT=str(tmp_path / "out"),
        NO_COLOR="1",
    )
    command = [sys.executable, "-m", "vchat", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)


@pytest.mark.slow
def test_cli_runs_one_perception_tool(tmp_path: Path, offline_hub: Path) -> None:
    photo = write_photo(tmp_path, width=70, height=45)
    out = vchat(tmp_path, offline_hub, "run", "--tool", "detect_hed", "-i", str(photo))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("HED soft edges of img1 (")
    handle, path = lines[1].split("\t")
    assert handle == "img2" and Path(path).is_file()


@pytest.mark.slow
def test_cli_scripted_model_uses_perception_tools(tmp_path: Path, offline_hub: Path) -> None:
    # In-process (typer's runner, the same code as the console script) to spare a second 8 s interpreter start.
    from typer.testing import CliRunner

    from vchat.cli.app import app

    photo = write_photo(tmp_path, width=70, height=45)
    script = tmp_path / "script.json"
    replies = [
        act("estimate_depth", "img1"),
        act("segment_semantic", "img1"),
        act("detect_objects", '{"image": "img1", "text": "square", "threshold": 0}'),
        answer("Depth is img2, classes img3, boxes img4."),
    ]
    script.write_text(json.dumps(replies))
    args = ["run", "map it", "-i", str(photo), "--llm", f"scripted:{script}", "--json", "-o", str(tmp_path / "out")]
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg-config"), "XDG_DATA_HOME": str(tmp_path / "xdg-data")}
    out = CliRunner().invoke(app, args, env=env)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["final"] == "Depth is img2, classes img3, boxes img4."
    tools = [step["tool"] for step in data["steps"] if step["kind"] == "observation"]
    assert tools == ["estimate_depth", "segment_semantic", "detect_objects"]
    assert [image["tool"] for image in data["images"][1:]] == tools
    assert all(image["parents"] == ["img1"] for image in data["images"][1:])
