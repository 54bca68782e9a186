"""Every shipped tool from the command line: `vchat run --tool NAME -i photo --json` on the tiny models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import write_photo
from tests.perception_fixtures import openpose_dir  # noqa: F401 - a fixture used by `env`
from typer.testing import CliRunner

from vchat.cli.app import app
from vchat.tools.registry import TOOL_CLASSES

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")

SD_FAST = ["steps=2", "seed=3"]
ARGS: dict[str, list[str]] = {
    "resize_image": ["width=32"],
    "crop_image": ["left=0", "top=0", "right=32", "bottom=24"],
    "rotate_image": ["degrees=90"],
    "answer_question": ["question=what colour is the square?"],
    "detect_objects": ["text=square", "threshold=0"],
    "segment_object": ["text=square", "threshold=0"],
    "detect_lines": ["threshold=0"],
    "generate_image": ["prompt=a red car", "width=64", "height=64", *SD_FAST],
    "instruct_edit": ["instruction=make it snow", *SD_FAST],
    "remove_object": ["object=square", *SD_FAST],
    "replace_object": ["object=square", "replacement=a red ball", *SD_FAST],
    "extend_image": ["prompt=a wall", "factor=1.5", *SD_FAST],
    **{cls.name: ["prompt=a house", *SD_FAST] for cls in TOOL_CLASSES if cls.name.startswith("generate_from_")},
}
# Tiny random-weight models that honestly find nothing in the test photo: they must say so (exit code 1).
NOTHING = {
    "detect_pose": "no person found",  # the tiny OpenPose has zero weights: it never sees a person
    "generate_from_pose": "no person found",
    "segment_anything": "no distinct regions found",
    "generate_from_scribble": "no strokes found",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, zoo_dir: Path, openpose_dir: Path) -> Iterator[dict[str, str]]:  # noqa: F811
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: thread start-up costs more than the work on 2 cores
    folder = tmp_path_factory.mktemp("cli-tools")
    # The zoo's Annotators folder has HED and M-LSD only; OpenPose comes from its own tiny folder.
    config = folder / "config.toml"
    config.write_text(f'[models]\n"annotators.openpose" = "{openpose_dir}"\n')
    yield {
        "VCHAT_CONFIG": str(config),
        "HF_HUB_CACHE": str(zoo_dir / "hub"),
        "HF_HUB_OFFLINE": "1",
        "VCHAT_OUT": str(folder / "out"),
        "XDG_CONFIG_HOME": str(folder / "cfg"),
        "VCHAT_LLM": "none",
        "PHOTO": str(write_photo(folder, width=64, height=48)),
    }
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", [cls.name for cls in TOOL_CLASSES])
@pytest.mark.slow
def test_tool_from_the_command_line(name: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = ["run", "--tool", name, "-i", env["PHOTO"], "--json"]
    for pair in ARGS.get(name, []):
        args += ["--arg", pair]
    result = CliRunner().invoke(app, args)
    data = json.loads(result.stdout.strip().splitlines()[-1])
    if result.exit_code == 1 and name in NOTHING and NOTHING[name] in (data["error"] or ""):
        return  # an honest "nothing found" from a random-weight model
    assert result.exit_code == 0, (data["error"], result.stderr)
    made = [image for image in data["images"] if image["tool"] == name]
    tool = next(cls for cls in TOOL_CLASSES if cls.name == name)
    if tool.output == "image":
        takes_image = any(field.kind == "image" for field in tool.inputs)
        assert made and Path(made[0]["path"]).is_file()
        assert made[0]["parents"] == (["img1"] if takes_image else [])
    else:
        assert data["final"] and "\n" not in data["final"].strip()
