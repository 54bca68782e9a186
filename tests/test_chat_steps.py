"""chat.steps: a tool call's outcome is typed: the user's text and the model's text apart, and why nothing was made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import act, answer, make_session, write_photo

from vchat.chat.steps import Step, run_tool
from vchat.errors import ModelLoadError, ToolError, ToolUnavailable
from vchat.tools.base import Field, Tool, ToolContext, ToolResult


class _Raises(Tool):
    name = "raises"
    description = "raises what it is given"
    inputs = (Field("image", "image", "an image"),)
    error: Exception = ToolError("no cat found")

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        raise self.error


def _observations(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.kind == "observation"]


def test_a_made_image_is_named_for_the_model_and_listed_apart_for_the_user(tmp_path: Path) -> None:
    session = make_session(tmp_path, [act("flip_image", "img1"), answer("img2")])
    session.attach(write_photo(tmp_path))
    [step] = _observations(list(session.turn("flip it")))
    assert step.failure is None and [ref.handle for ref in step.images] == ["img2"]
    assert step.observation is not None and step.observation.endswith("New image img2.")
    assert "New image" not in step.text and step.text in step.observation


def test_unknown_tool_and_bad_input_are_typed(tmp_path: Path) -> None:
    replies = [act("make_magic", "img1"), act("flip_image", '{"image": "img1", "direction": "sideways"}'), answer("no")]
    session = make_session(tmp_path, replies)
    session.attach(write_photo(tmp_path))
    unknown, bad = _observations(list(session.turn("do it")))
    assert unknown.failure == "unknown_tool" and unknown.text == unknown.observation
    assert bad.failure == "bad_input" and bad.text.startswith("bad input for flip_image")


def test_a_failing_tool_is_failed_and_one_that_cannot_run_is_blocked(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    ref = session.attach(write_photo(tmp_path))
    tool = _Raises()
    failed = run_tool(tool, {"image": ref}, session, "img1")
    assert failed.failure == "failed" and failed.text == failed.observation == "raises failed: no cat found"
    tool.error = ToolUnavailable("model sd15.unet is not downloaded")
    blocked = run_tool(tool, {"image": ref}, session, "img1")
    assert blocked.failure == "blocked"
    assert blocked.text == "raises failed: model sd15.unet is not downloaded"
    assert blocked.observation == f"{blocked.text}; {ToolUnavailable.for_model}"
    assert issubclass(ToolUnavailable, ModelLoadError)


def test_the_failure_kind_is_kept_in_the_transcript_record() -> None:
    assert Step("observation", failure="blocked").to_dict()["failure"] == "blocked"
