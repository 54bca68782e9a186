"""Run bench tasks through the chat's own Session and Agent, with stand-in (or real) tools."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from vchat.bench.capabilities import capability_of
from vchat.bench.planners import plan_replies
from vchat.bench.scorer import Call, Score, Trace, score
from vchat.bench.standins import World, real_tools, standin_tools
from vchat.bench.tasks import Task
from vchat.chat.binding import bind_input
from vchat.chat.steps import Step
from vchat.config import Settings
from vchat.errors import UnknownImageError, UnsafePathError, VchatError
from vchat.llm.base import LLM, Message, ToolCalls, text_of
from vchat.llm.scripted import ScriptedLLM
from vchat.react.strict import well_formed
from vchat.session import Session
from vchat.store.images import ImageStore
from vchat.tools.base import Tool

# A model that fails this many tasks in a row with a backend error is not reachable: stop early.
MAX_BACKEND_ERRORS_IN_A_ROW = 3
T = TypeVar("T")
Planner = LLM | Callable[[Task], LLM]


class BenchError(VchatError):
    """The bench cannot go on (the backend is down, a task of the suite is broken)."""


class Meter(LLM):
    """Wraps the model under test: counts calls and tokens (the backend's usage, else characters / 4).

    Everything the agent asks of a backend (vision, limits, how the last reply ended) is the wrapped one's.
    """

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.tokens_in = 0
        self.tokens_out = 0
        self.estimated = False  # True once any call had no usage from the backend
        self.reported = False  # True once any call had usage from the backend

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.llm.name

    @property
    def supports_tools(self) -> bool:  # type: ignore[override]
        """The wrapped model's native tool calling."""
        return self.llm.supports_tools

    @property
    def supports_vision(self) -> bool:
        """Whether the wrapped model takes images."""
        return self.llm.supports_vision

    @property
    def vision_refused(self) -> bool:  # type: ignore[override]
        """Whether the wrapped model's server turned images down."""
        return self.llm.vision_refused

    @property
    def max_tokens(self) -> int | None:  # type: ignore[override]
        """The wrapped model's cap on new tokens."""
        return self.llm.max_tokens

    @property
    def last_finish(self) -> str | None:  # type: ignore[override]
        """Why the wrapped model's last reply ended."""
        return self.llm.last_finish

    def notice(self) -> str | None:
        """The wrapped model's first-use line."""
        return self.llm.notice()

    def expect(self, spec: Any) -> None:
        """The next reply's shape, for the wrapped model (constrained decoding)."""
        self.llm.expect(spec)

    def take_notice(self) -> str | None:
        """The wrapped model's one-time notice."""
        return self.llm.take_notice()

    def bind_runtime(self, models: Callable[[], Any], cancelled: Callable[[], bool] | None = None) -> None:
        """Bind the wrapped model to the session's runtime."""
        self.llm.bind_runtime(models, cancelled)

    def complete_with_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> Iterator[str | ToolCalls]:
        """Native tool calling on the wrapped model, counted like `complete`."""
        chars_in = sum(len(text_of(m)) for m in messages) + len(json.dumps(list(tools)))
        self.llm.last_usage = None
        stats_before = getattr(self.llm, "last", None)
        return self._count(self.llm.complete_with_tools(messages, tools), chars_in, stats_before)

    def complete(self, messages: Sequence[Message], stop: Sequence[str] | None = None) -> Iterator[str]:
        """Stream the wrapped model's reply, counting it when the stream ends."""
        chars_in = sum(len(text_of(m)) for m in messages)
        self.llm.last_usage = None
        stats_before = getattr(self.llm, "last", None)
        return self._count(self.llm.complete(messages, stop), chars_in, stats_before)

    def _usage(self, stats_before: Any) -> tuple[int, int] | None:
        """Token counts of the reply just streamed, when the backend kept them."""
        usage = self.llm.last_usage  # OpenAI-compatible servers that report usage
        if usage is not None:
            return usage
        # The built-in planner's per-reply stats (a new object per reply), until it reports `last_usage` itself.
        stats = getattr(self.llm, "last", None)
        prompt, new = getattr(stats, "prompt_tokens", None), getattr(stats, "new_tokens", None)
        if stats is not stats_before and isinstance(prompt, int) and isinstance(new, int) and prompt > 0:
            return prompt, new
        return None

    def _count(self, stream: Iterator[T], chars_in: int, stats_before: Any) -> Iterator[T]:
        chars_out = 0
        try:
            for chunk in stream:
                # Text, or (native protocol) the tool calls the model made.
                calls = getattr(chunk, "calls", ())
                chars_out += (
                    len(chunk) if isinstance(chunk, str) else sum(len(c.name) + len(c.arguments) for c in calls)
                )
                yield chunk
        finally:
            usage = self._usage(stats_before)
            if usage is not None:
                self.tokens_in += int(usage[0])
                self.tokens_out += int(usage[1])
                self.reported = True
            else:
                self.tokens_in += round(chars_in / 4)
                self.tokens_out += round(chars_out / 4)
                self.estimated = True


@dataclass
class TaskResult:
    """One run of one task: the verdict and what it cost."""

    task: Task
    score: Score
    steps: int
    retries: int
    tokens_in: int
    tokens_out: int
    seconds: float
    final: str | None
    calls: list[Call] = field(default_factory=list)
    tokens_estimated: bool = True
    # The two mistakes constrained decoding removes: tool names no tool answers to, and image names that do not
    # exist (in a call's input or in the answer).
    invented_tools: list[str] = field(default_factory=list)
    invented_handles: list[str] = field(default_factory=list)
    loose_replies: int = 0  # replies read only thanks to the lenient parser (not in the exact ReAct shape)


def _resolver(store: ImageStore, invented: list[str]) -> Callable[[str], str]:
    def resolve(name: str) -> str:
        try:
            return store.resolve(name).handle
        except (UnknownImageError, UnsafePathError):
            invented.append(name.strip())
            return name.strip()

    return resolve


def _call_of(step: Step, session: Session) -> Call:
    """How the scorer sees an action: its capability and inputs bound as the tool would bind them.

    Whether the agent refused the input is decided by its observation (see run_task), not here.
    """
    name = step.tool or ""
    tool = session.tools.get(name)
    call = Call(tool=name, capability=capability_of(name))
    if tool is None:
        return call
    invented: list[str] = []
    try:
        args = bind_input(type(tool), step.input or "", _resolver(session.store, invented))
    except VchatError:
        args = {}
    call.args = args
    call.invented = invented
    call.capability = capability_of(name, args)
    images = [spec.name for spec in tool.inputs if spec.kind == "image"]
    if images and isinstance(args.get(images[0]), str):
        call.image = args[images[0]]
    return call


def _play_setup(session: Session, task: Task) -> None:
    """Earlier turns, played by a scripted model through the same Session.turn the chat uses."""
    classes = [type(t) for t in session.tools.values()]
    for turn in task.setup:
        session.llm = ScriptedLLM(plan_replies(turn.calls, turn.answer, classes), name="setup")
        steps = list(session.turn(turn.text))
        if not steps or steps[-1].kind != "final":
            last = steps[-1].text if steps else "no steps"
            raise BenchError(f"task {task.id}: its setup turn {turn.text!r} did not finish ({last})")


def run_task(
    task: Task,
    planner: Planner,
    settings: Settings,
    classes: Sequence[type[Tool]],
    *,
    real: bool = False,
    folder: Path,
    models: Any = None,
    extra: Sequence[Tool] = (),
) -> TaskResult:
    """Run one task in a fresh session under `folder` and score it (`models`: a runtime to share, for real tools;
    `extra`: plugin and external MCP servers' tools, offered too with real tools)."""
    world = World(task)
    tools = [*real_tools(world, classes), *extra] if real else standin_tools(world, classes)
    # Unlisted: the bench's sessions live in a temporary folder and must not appear in `vchat sessions`.
    session = Session(
        dataclasses.replace(settings, out_dir=folder / "sessions", caption_on_attach=False),
        tools,
        models=models,
        listed=False,
    )
    world.session = session
    try:
        for scene, path in world.write_scenes(folder.parent / "inputs"):
            world.attached(session.attach(path), scene)
        _play_setup(session, task)
        model = planner(task) if callable(planner) and not hasattr(planner, "complete") else planner
        meter = Meter(model)  # type: ignore[arg-type]
        session.llm = meter
        world.measuring = True
        trace = Trace(prompt=task.prompt)
        pending: Call | None = None
        started = time.perf_counter()
        loose = 0
        for step in session.turn(task.prompt):
            if step.kind in ("action", "final", "retry") and step.reply is not None and not well_formed(step.reply):
                loose += 1
            if step.kind == "action":
                pending = _call_of(step, session)
                trace.calls.append(pending)
            elif step.kind == "observation" and pending is not None:
                pending.observation = step.observation or ""
                if step.failure == "bad_input":
                    pending.refused = pending.observation  # the agent's binder refused it: the tool never ran
                pending.outputs = [ref.handle for ref in step.images]
                pending = None
            elif step.kind == "retry":
                trace.retries += 1
            elif step.kind == "final":
                trace.final, trace.flagged = step.text, list(step.flagged)
            elif step.kind == "error":
                trace.error = f"{step.reason}: {step.text}" if step.reason else step.text
        seconds = time.perf_counter() - started
        files = {}
        for ref in session.store:
            files[str(ref.path)] = ref.handle
            files[ref.path.name] = ref.handle
            if ref.source:
                files[ref.source] = ref.handle
                files[Path(ref.source).name] = ref.handle
        trace.known_files = set(files)
        verdict = score(task, trace, files)
    finally:
        session.close()
    return TaskResult(
        task,
        verdict,
        len(trace.calls),
        trace.retries,
        meter.tokens_in,
        meter.tokens_out,
        seconds,
        trace.final,
        trace.calls,
        tokens_estimated=meter.estimated or not meter.reported,
        invented_tools=[c.tool for c in trace.calls if c.tool not in session.tools],
        invented_handles=[name for c in trace.calls for name in c.invented] + list(trace.flagged),
        loose_replies=loose,
    )


def _nothing() -> None:
    """Nothing to stop (no external MCP servers)."""


def run_suite(
    tasks: Sequence[Task],
    planner: Planner,
    settings: Settings,
    classes: Sequence[type[Tool]],
    *,
    real: bool = False,
    repeat: int = 1,
    on_result: Callable[[int, TaskResult], None] | None = None,
) -> list[list[TaskResult]]:
    """Every task, `repeat` times; one list of results per run."""
    runs: list[list[TaskResult]] = []
    in_a_row = 0
    models = None
    extra: list[Tool] = []
    stop_servers: Callable[[], None] = _nothing
    if real:  # one runtime for every task: weights load once, not once per task's session
        from vchat.plugins.extras import extra_tools
        from vchat.runtime import ModelManager

        models = ModelManager.from_settings(settings)
        # The user's whole tool set: plugins and the configured MCP servers (started once, for every task).
        extra, failures, stop_servers = extra_tools(settings)
        if failures:
            stop_servers()
            raise BenchError(f"{failures[0]}; fix it or leave it out of the config for the bench")
    with contextlib.ExitStack() as cleanup, tempfile.TemporaryDirectory(prefix="vchat-bench-") as tmp:
        cleanup.callback(stop_servers)
        for index in range(repeat):
            results: list[TaskResult] = []
            for task in tasks:
                folder = Path(tmp) / f"run{index}"
                result = run_task(
                    task, planner, settings, classes, real=real, folder=folder, models=models, extra=extra
                )
                results.append(result)
                if on_result is not None:
                    on_result(index, result)
                error = next((r for r in result.score.reasons if r.startswith("no final answer (llm:")), None)
                in_a_row = in_a_row + 1 if error else 0
                if in_a_row >= MAX_BACKEND_ERRORS_IN_A_ROW:
                    detail = error[len("no final answer (llm: ") : -1] if error else ""
                    raise BenchError(f"the model failed {in_a_row} tasks in a row: {detail}")
            runs.append(results)
    return runs
