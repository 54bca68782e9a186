from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.helpers import act, answer, make_session, write_photo

from vchat.agent import STOP, Agent
from vchat.errors import ToolError
from vchat.llm.scripted import ScriptedLLM, ScriptedReply
from vchat.session import Observers
from vchat.tools.base import Field, Tool, ToolContext, ToolResult


class Boom(Tool):
    name = "boom"
    description = "always fails"
    inputs = (Field("image", "image", "any"),)

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        raise ZeroDivisionError("division by zero\nsecond line")


class Empty(Tool):
    name = "find_nothing"
    description = "finds nothing"
    inputs = (Field("image", "image", "any"),)

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        raise ToolError("no cat found")


def _turn(
    tmp_path: Path, replies: list[str | ScriptedReply], *, extra: list[Tool] | None = None, **kw: Any
) -> tuple[list, Any]:
    session = make_session(tmp_path, [], **kw)
    session.llm = ScriptedLLM(replies)
    for tool in extra or []:
        session.tools[tool.name] = tool
    session.attach(write_photo(tmp_path))
    steps = list(session.turn("find the edges of img1"))
    return steps, session


def test_multi_step_turn_makes_images_and_answers(tmp_path: Path) -> None:
    steps, session = _turn(
        tmp_path,
        [
            act("canny_edges", '{"image": "img1", "low": 50}'),
            act("flip_image", "img2"),
            answer("Done: img3 is the flipped edge map."),
        ],
    )
    kinds = [s.kind for s in steps]
    assert kinds == ["action", "observation", "action", "observation", "final"]
    assert [r.handle for r in steps[1].images] == ["img2"]
    assert steps[3].images[0].parents == ("img2",)
    assert steps[-1].text == "Done: img3 is the flipped edge map."
    assert steps[-1].flagged == []
    # the model saw the observation of the first call before its second reply
    second_call = session.llm.calls[1]
    assert second_call[-1]["role"] == "user"
    assert second_call[-1]["content"].startswith("Observation: Canny edges of img1")
    assert "New image img2" in second_call[-1]["content"]


def test_stop_sequence_is_sent(tmp_path: Path) -> None:
    seen: list[Any] = []

    class Spy(ScriptedLLM):
        def complete(self, messages: Any, stop: Any = None) -> Any:
            seen.append(stop)
            return super().complete(messages, stop)

    session = make_session(tmp_path, [])
    session.llm = Spy([answer("hi")])
    list(session.turn("hello"))
    assert seen == [STOP]


def test_system_prompt_is_identical_across_turns(tmp_path: Path) -> None:
    session = make_session(tmp_path, [answer("one"), answer("two")])
    list(session.turn("first"))
    list(session.turn("second"))
    first, second = session.llm.calls
    assert first[0] == second[0]
    assert first[0]["role"] == "system"
    assert "detect_map(" in first[0]["content"]
    # history: the second turn carries the first exchange
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]


def test_unreadable_reply_gets_a_reminder_then_recovers(tmp_path: Path) -> None:
    steps, session = _turn(tmp_path, ["", answer("ok")])
    assert [s.kind for s in steps] == ["retry", "final"]
    reminder = session.llm.calls[1][-1]["content"]
    assert reminder.startswith("Observation:")


def test_format_retries_are_bounded(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, ["", "", "", ""], max_format_retries=2)
    assert [s.kind for s in steps] == ["retry", "retry", "error"]
    assert steps[-1].reason == "unreadable"


def test_max_steps_ends_with_a_clear_message(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, [act("grayscale_image", "img1")] * 5, max_steps=2)
    assert [s.kind for s in steps].count("observation") == 2
    assert steps[-1].kind == "error"
    assert steps[-1].reason == "step_limit"
    assert "--max-steps" in steps[-1].text


def test_unknown_tool_lists_valid_ones(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, [act("make_magic", "img1"), answer("sorry")])
    obs = steps[1].observation or ""
    assert obs.startswith("unknown tool 'make_magic'; valid tools:")
    assert "detect_map" in obs and "canny_edges" not in obs  # the offered names, not every alias


def test_unknown_image_lists_known_images(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, [act("canny_edges", "img9"), answer("sorry")])
    assert "unknown image 'img9'" in (steps[1].observation or "")
    assert "img1" in (steps[1].observation or "")


def test_invented_path_is_refused(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, [act("canny_edges", '{"image": "../../etc/passwd"}'), answer("sorry")])
    assert "not an image of this session" in (steps[1].observation or "")


def test_bad_input_says_what_was_expected(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, [act("crop_image", "img1"), answer("sorry")])
    assert "crop_image expects" in (steps[1].observation or "")


def test_tool_exception_becomes_one_line_observation(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, [act("boom", "img1"), answer("it failed")], extra=[Boom()])
    assert steps[1].observation == "boom failed: ZeroDivisionError: division by zero"
    assert steps[-1].kind == "final"


def test_tool_error_is_told_plainly(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, [act("find_nothing", "img1"), answer("no cat")], extra=[Empty()])
    assert steps[1].observation == "find_nothing failed: no cat found"


def test_final_answer_naming_a_missing_image_is_flagged(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, [answer("Here it is: img5.")])
    assert steps[-1].flagged == ["img5"]


def test_llm_error_ends_the_turn_with_an_error_step(tmp_path: Path) -> None:
    steps, _ = _turn(tmp_path, [ScriptedReply(error="backend down")])
    assert steps[-1].kind == "error"
    assert steps[-1].reason == "llm"
    assert "backend down" in steps[-1].text


def test_streamed_text_reaches_on_text(tmp_path: Path) -> None:
    session = make_session(tmp_path, [answer("streamed answer")])
    seen: list[str] = []
    list(session.turn("hi", Observers(text=seen.append)))
    assert "".join(seen).endswith("AI: streamed answer")


def test_agent_alone_without_session(tmp_path: Path) -> None:
    session = make_session(tmp_path, [])
    agent = Agent(ScriptedLLM([answer("plain")]), list(session.tools.values()), session, session.store)
    steps = list(agent.run_turn("hello"))
    assert steps[-1].text == "plain"


@pytest.mark.parametrize(
    "reply",
    [
        "Thought: Do I need to use a tool? Yes\nAction: canny_edges\nAction Input: img1\nObservation: made img2",
        '```json\n{"action": "canny_edges", "action_input": {"image": "img1"}}\n```',
    ],
)
def test_lenient_replies_run_the_tool(tmp_path: Path, reply: str) -> None:
    steps, _ = _turn(tmp_path, [reply, answer("done, img2")])
    assert steps[1].images[0].handle == "img2"
    assert steps[-1].flagged == []
