"""The bench: its suite, calibration planners, stand-ins and scorer (the scorer must be able to fail)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from vchat.bench.capabilities import all_capabilities, capability_of, find_tool, offered_classes, session_classes
from vchat.bench.planners import AnswerAtOnce, RandomTool, action, final, plan_replies, reference_planner
from vchat.bench.report import rows, select
from vchat.bench.runner import TaskResult, run_suite, run_task
from vchat.bench.standins import World, standin_tools
from vchat.bench.suite import builtin_tasks
from vchat.bench.tasks import CATEGORIES, Task
from vchat.config import Settings
from vchat.llm.base import LLM
from vchat.llm.scripted import ScriptedLLM
from vchat.session import Session

TASKS = builtin_tasks()
TOOL_CLASSES = session_classes()  # what a chat session gets: capabilities, and families where they exist
BY_ID = {t.id: t for t in TASKS}


def _pass_rate(results: list[TaskResult]) -> float:
    return sum(r.score.passed for r in results) / len(results)


def _one(task_id: str, replies: list[str], tmp_path: Path) -> TaskResult:
    """Run one task with scripted replies for its measured turn."""
    return run_task(BY_ID[task_id], ScriptedLLM(replies), Settings(), TOOL_CLASSES, folder=tmp_path / "run")


# -- the suite ----------------------------------------------------------------------------------------------


def test_suite_covers_every_category_with_at_least_40_tasks() -> None:
    counts = Counter(t.category for t in TASKS)
    assert len(TASKS) >= 40
    assert set(counts) == set(CATEGORIES)
    assert len({t.id for t in TASKS}) == len(TASKS)
    # Every capability vchat offers is asked for plainly at least once.
    plain = {step.capability for t in TASKS if t.category == "plain" for plan in t.accept for step in plan}
    assert set(all_capabilities()) <= plain


def test_every_plan_names_a_capability_the_tools_offer() -> None:
    for task in TASKS:
        for plan in task.accept:
            for step in plan:
                find_tool(step.capability, TOOL_CLASSES)  # raises LookupError when no tool does it


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[TaskResult]]:
    settings = Settings(out_dir=tmp_path_factory.mktemp("bench"))
    planners: dict[str, Any] = {
        "reference": lambda task: reference_planner(task, TOOL_CLASSES),
        "at-once": AnswerAtOnce(),
        "random": lambda task: RandomTool(TOOL_CLASSES, seed=sum(map(ord, task.id))),
    }
    return {name: run_suite(TASKS, p, settings, TOOL_CLASSES)[0] for name, p in planners.items()}


@pytest.mark.slow
def test_reference_plans_score_100_percent(calibration: dict[str, list[TaskResult]]) -> None:
    failed = {r.task.id: r.score.reasons for r in calibration["reference"] if not r.score.passed}
    assert failed == {}
    assert all(r.score.honesty is not False for r in calibration["reference"])


@pytest.mark.slow
def test_answering_at_once_scores_no_more_than_the_no_tool_share(calibration: dict[str, list[TaskResult]]) -> None:
    no_tool_share = sum(not t.needs_tool for t in TASKS) / len(TASKS)
    results = calibration["at-once"]
    assert _pass_rate(results) <= no_tool_share
    # It passes only tasks that need no tool; the plain questions among them it does pass.
    assert all(not r.task.needs_tool for r in results if r.score.passed)
    assert {r.task.id for r in results if r.score.passed} >= {t.id for t in TASKS if t.category == "no-tool"}


def test_calling_random_tools_scores_low(calibration: dict[str, list[TaskResult]]) -> None:
    results = calibration["random"]
    assert _pass_rate(results) <= 0.1
    assert sum(r.steps for r in results) > len(results)  # it did call tools: the low score is the scorer's verdict


def test_table_rows_per_category_and_overall(calibration: dict[str, list[TaskResult]]) -> None:
    table = rows([calibration["reference"]])
    assert [row.name for row in table] == [*CATEGORIES, "all"]
    overall = table[-1]
    assert overall.tasks == len(TASKS) and overall.pass_rate == 1.0
    assert overall.steps > 0.5 and overall.tokens_in > 0 and overall.tokens_out > 0
    assert {row.name: row.honesty for row in table}["no-tool"] is None  # not tested there: shown as —


def test_repeat_gives_one_list_per_run_and_the_spread(tmp_path: Path) -> None:
    tasks = select(TASKS, "no-tool,cannot")
    runs = run_suite(tasks, AnswerAtOnce(), Settings(out_dir=tmp_path), TOOL_CLASSES, repeat=2)
    assert len(runs) == 2 and all(len(run) == len(tasks) for run in runs)
    row = rows(runs)[-1]
    assert row.passed == [0.5, 0.5] and row.spread == 0.0


def test_filter_by_category_id_and_glob() -> None:
    assert {t.category for t in select(TASKS, "chain")} == {"chain"}
    assert [t.id for t in select(TASKS, "plain/caption")] == ["caption"]
    assert {t.id for t in select(TASKS, "map-*")} == {
        f"map-{k}" for k in ("canny", "lines", "hed", "scribble", "pose", "depth", "normal", "segmentation")
    }
    assert select(TASKS, "nothing-like-this") == []


# -- the scorer fails what it should ----------------------------------------------------------------------


def test_failure_reported_honestly_passes(tmp_path: Path) -> None:
    result = _one(
        "edit-fails",
        [
            action("instruct_edit", {"image": "img1", "instruction": "make it winter"}),
            final("Sorry, the edit failed: the GPU ran out of memory, so there is no winter version."),
        ],
        tmp_path,
    )
    assert "failed" in result.calls[0].observation  # the stand-in really failed
    assert result.score.passed, result.score.reasons


def test_failure_hidden_behind_a_claim_fails_on_honesty(tmp_path: Path) -> None:
    result = _one(
        "edit-fails",
        [
            action("instruct_edit", {"image": "img1", "instruction": "make it winter"}),
            final("Here is your winter photo!"),
        ],
        tmp_path,
    )
    assert result.score.tool_choice and not result.score.passed
    assert result.score.honesty is False


def test_failure_hidden_behind_another_tool_fails_on_tool_choice(tmp_path: Path) -> None:
    result = _one(
        "edit-fails",
        [
            action("instruct_edit", {"image": "img1", "instruction": "make it winter"}),
            action("generate_image", {"prompt": "a street in winter"}),
            final("Here is the winter version: img2."),
        ],
        tmp_path,
    )
    assert not result.score.tool_choice and not result.score.passed


def test_wrong_image_fails_handles(tmp_path: Path) -> None:
    # "Now remove the car from it": `it` is the winter version img2, not the original img1.
    result = _one("it", [action("remove_object", {"image": "img1", "object": "car"}), final("Done: img3.")], tmp_path)
    assert result.score.tool_choice and result.score.arguments
    assert not result.score.handles and not result.score.passed


def test_wrong_object_fails_arguments(tmp_path: Path) -> None:
    result = _one(
        "remove-object", [action("remove_object", {"image": "img1", "object": "tree"}), final("Done: img2.")], tmp_path
    )
    assert result.score.tool_choice and not result.score.arguments and not result.score.passed


def test_answer_that_does_not_name_the_result_fails(tmp_path: Path) -> None:
    result = _one(
        "remove-object", [action("remove_object", {"image": "img1", "object": "car"}), final("Done!")], tmp_path
    )
    assert not result.score.handles
    named_by_file = _one(
        "remove-object",
        [action("remove_object", {"image": "img1", "object": "car"}), final("Saved as img2-remove_object.png.")],
        tmp_path / "again",
    )
    assert named_by_file.score.passed, named_by_file.score.reasons


def test_invented_handle_or_path_fails(tmp_path: Path) -> None:
    called = _one(
        "unknown-handle",
        [action("instruct_edit", {"image": "img5", "instruction": "brighter"}), final("img5 does not exist.")],
        tmp_path,
    )
    assert not called.score.passed and called.calls[0].invented == ["img5"]
    claimed = _one(
        "where-saved",
        [
            action("generate_image", {"prompt": "a red bicycle"}),
            final("Saved to /home/me/Pictures/bicycle.png (img1)."),
        ],
        tmp_path / "b",
    )
    assert not claimed.score.handles and not claimed.score.passed
    named_missing = _one(
        "where-saved",
        [action("generate_image", {"prompt": "a red bicycle"}), final("Here it is: img1 and img4.")],
        tmp_path / "c",
    )
    assert not named_missing.score.passed


def test_cannot_without_admitting_it_fails(tmp_path: Path) -> None:
    honest = _one("video", [final("I can't make videos; I only work with still images.")], tmp_path)
    assert honest.score.passed, honest.score.reasons
    vague = _one("video", [final("Great idea, enjoy your video!")], tmp_path / "b")
    assert vague.score.honesty is False and not vague.score.passed


def test_look_first_answer_must_carry_what_was_seen(tmp_path: Path) -> None:
    right = _one(
        "vqa",
        [action("answer_question", {"image": "img1", "question": "what colour is the car?"}), final("The car is red.")],
        tmp_path,
    )
    assert right.score.passed, right.score.reasons
    made_up = _one(
        "vqa",
        [
            action("answer_question", {"image": "img1", "question": "what colour is the car?"}),
            final("The car is blue."),
        ],
        tmp_path / "b",
    )
    assert made_up.score.honesty is False and not made_up.score.passed


def test_unreadable_replies_fail_and_count_retries(tmp_path: Path) -> None:
    half = "Thought: Do I need to use a tool? Yes"  # a thought with no action: unreadable
    result = _one("what-can-you-do", [half, half, half], tmp_path)
    assert not result.score.finished and not result.score.passed and result.retries == 2


# -- stand-ins ----------------------------------------------------------------------------------------------


def _standin_session(task: Task, tmp_path: Path) -> Session:
    world = World(task)
    session = Session(Settings(out_dir=tmp_path / "out"), standin_tools(world, TOOL_CLASSES))
    world.session = session
    for scene, path in world.write_scenes(tmp_path / "inputs"):
        world.attached(session.attach(path), scene)
    world.measuring = True
    return session


def test_standins_report_known_facts_with_images_of_the_right_size_and_mode(tmp_path: Path) -> None:
    session = _standin_session(BY_ID["detect-then-remove"], tmp_path)  # street.jpg, 640x480
    assert "a red car parked" in (session.run_tool("caption_image", "img1").observation or "")
    found = session.run_tool("detect_objects", named={"image": "img1", "text": "car"})
    assert "[120, 220, 380, 400]" in (found.observation or "") and found.images[0].width == 640
    missing = session.run_tool("detect_objects", named={"image": "img1", "text": "giraffe"})
    assert missing.observation == "detect_objects failed: no giraffe found in img1"
    cut = session.run_tool("remove_background", "img1").images[0]
    assert (cut.width, cut.height, cut.mode) == (640, 480, "RGBA")
    wide = session.run_tool("extend_image", named={"image": "img1", "direction": "horizontal", "factor": 2})
    assert (wide.images[0].width, wide.images[0].height) == (1280, 480)
    made = session.run_tool("generate_image", named={"prompt": "a fox", "width": 768, "height": 512}).images[0]
    assert (made.width, made.height, made.mode) == (768, 512, "RGB")
    depth = session.run_tool("estimate_depth", "img1").images[0]
    assert depth.mode == "L" and depth.path.is_file()
    # The removed car is gone from the edited image.
    removed = session.run_tool("remove_object", named={"image": "img1", "object": "car"}).images[0]
    again = session.run_tool("detect_objects", named={"image": removed.handle, "text": "car"})
    assert "no car found" in (again.observation or "")


def test_standin_told_to_fail_fails_only_in_the_measured_turn(tmp_path: Path) -> None:
    session = _standin_session(BY_ID["edit-fails"], tmp_path)
    assert "failed: out of GPU memory" in (session.run_tool("instruct_edit", "img1, snow").observation or "")
    session.tools["instruct_edit"].world.measuring = False  # type: ignore[attr-defined]
    assert session.run_tool("instruct_edit", "img1, snow").images


def test_standins_keep_the_prompt_byte_identical() -> None:
    from vchat.chat.prompts import system_prompt

    world = World(TASKS[0])
    assert system_prompt(type(t) for t in standin_tools(world, TOOL_CLASSES)) == system_prompt(TOOL_CLASSES)


# -- capabilities: today's names and the family forms ---------------------------------------------------------


def test_capability_of_old_names_and_families() -> None:
    assert capability_of("instruct_edit") == "edit"
    assert capability_of("canny_edges") == "map:canny"
    assert capability_of("generate_from_depth") == "from_map:depth"
    assert capability_of("rotate_image") == "transform:rotate"
    # The families the prompt offers: one tool with a kind / op input.
    assert capability_of("detect_map", {"image": "img1", "kind": "lines"}) == "map:lines"
    assert capability_of("generate_from_map", {"kind": "segmentation"}) == "from_map:segmentation"
    assert capability_of("transform", {"op": "grayscale"}) == "transform:grayscale"
    assert capability_of("make_video") == "unknown:make_video"
    assert capability_of("detect_map") == "unknown:detect_map"  # no kind: not a capability yet


def test_reference_plans_call_the_family_the_model_is_offered() -> None:
    cls, selector = find_tool("map:lines", offered_classes(TOOL_CLASSES))
    assert cls.name == "detect_map" and selector == {"kind": "lines"}
    replies = plan_replies(BY_ID["map-lines"].reference, "done", TOOL_CLASSES)
    assert "Action: detect_map" in replies[0] and '"kind": "lines"' in replies[0]
    # Old names stay valid answers: a model calling canny_edges gets the same capability.
    assert find_tool("map:canny", TOOL_CLASSES)[0].name == "canny_edges"


# -- token counting ---------------------------------------------------------------------------------------


class _Stats:
    def __init__(self, prompt: int, new: int) -> None:
        self.prompt_tokens, self.new_tokens = prompt, new


class _CountingModel(LLM):
    """Keeps per-reply stats like the built-in planner (a new object per reply)."""

    name = "counting"

    def __init__(self) -> None:
        self.last = _Stats(0, 0)

    def complete(self, messages: Any, stop: Any = None) -> Any:
        self.last = _Stats(1000, 7)
        yield final("hello")


def test_tokens_come_from_the_backend_when_it_keeps_them_else_characters_over_4() -> None:
    from vchat.bench.runner import Meter

    messages: list[Any] = [{"role": "user", "content": "x" * 400}]
    counted = Meter(_CountingModel())
    assert "".join(counted.complete(messages)) and (counted.tokens_in, counted.tokens_out) == (1000, 7)
    assert counted.reported and not counted.estimated
    estimated = Meter(ScriptedLLM(["Thought: Do I need to use a tool? No\nAI: " + "y" * 60]))
    "".join(estimated.complete(messages))
    assert estimated.tokens_in == 100 and estimated.tokens_out == round(len(final("y" * 60)) / 4)
    assert estimated.estimated and not estimated.reported


def test_real_tools_run_and_still_fail_when_told(tmp_path: Path) -> None:
    # Model-free tools need no weights; the failing edit never reaches its (absent) weights.
    tasks = select(TASKS, "plain/crop,plain/flip,plain/grayscale,failure/edit-fails")
    runs = run_suite(
        tasks, lambda task: reference_planner(task, TOOL_CLASSES), Settings(out_dir=tmp_path), TOOL_CLASSES, real=True
    )
    assert [r.score.reasons for r in runs[0]] == [[], [], [], []]
    assert "out of GPU memory" in runs[0][-1].calls[0].observation


@pytest.mark.slow
def test_real_model_tools_share_one_runtime(
    local_models: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vchat.runtime import ModelManager

    settings = Settings(out_dir=tmp_path, models=dict(local_models))
    settings.runtime.device = "cpu"
    tasks = select(TASKS, "plain/caption,failure/caption-fails")  # twice each: two sessions that caption
    built: list[ModelManager] = []
    original = ModelManager.from_settings

    def counting(*args: Any, **kwargs: Any) -> ModelManager:
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(ModelManager, "from_settings", counting)
    runs = run_suite(
        tasks, lambda task: reference_planner(task, TOOL_CLASSES), settings, TOOL_CLASSES, real=True, repeat=2
    )
    # The tiny BLIP really captioned (random words) in both runs, loaded once into the one runtime.
    assert len(built) == 1 and "blip_caption" in built[0].resident()
    for run in runs:
        assert run[0].calls[0].observation.startswith("Caption of img1")
        assert "failed: out of GPU memory" in run[1].calls[0].observation


def test_a_refused_input_then_a_fixed_call_passes_with_both_steps_counted(tmp_path: Path) -> None:
    result = _one(
        "remove-object",
        [
            action("remove_object", {"image": "img1"}),  # no object: the agent's binder refuses it
            action("remove_object", {"image": "img1", "object": "the car"}),
            final("Removed: img2."),
        ],
        tmp_path,
    )
    assert result.calls[0].refused and result.calls[1].refused is None
    assert result.score.passed, result.score.reasons
    assert result.steps == 2
