"""Reference replies for a plan, and the three calibration planners (reference, answer-at-once, random-tool)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from typing import Any

from vchat.bench.capabilities import find_tool, offered_classes
from vchat.bench.tasks import Plan, Task
from vchat.llm.base import LLM, Message, text_of
from vchat.llm.scripted import ScriptedLLM
from vchat.tools.base import Tool


def action(tool: str, args: dict[str, Any]) -> str:
    """One ReAct tool-call reply."""
    return f"Thought: Do I need to use a tool? Yes\nAction: {tool}\nAction Input: {json.dumps(args)}"


def final(text: str) -> str:
    """One ReAct final-answer reply."""
    return f"Thought: Do I need to use a tool? No\nAI: {text}"


def plan_replies(plan: Plan, answer: str, tools: Sequence[type[Tool]]) -> list[str]:
    """The replies that carry out a plan with the tools the model is offered, then give the answer."""
    replies = []
    listed = offered_classes(tools)
    for step in plan:
        cls, selector = find_tool(step.capability, listed)
        replies.append(action(cls.name, {**selector, **step.reference_args()}))
    return [*replies, final(answer)]


def reference_planner(task: Task, tools: Sequence[type[Tool]]) -> ScriptedLLM:
    """Replays the task's own reference plan: must score 100%."""
    return ScriptedLLM(plan_replies(task.reference, task.answer, tools), name="reference")


class AnswerAtOnce(LLM):
    """Answers every message at once with no tool: scores at most the share of no-tool tasks."""

    name = "answer-at-once"

    def complete(self, messages: Sequence[Message], stop: Sequence[str] | None = None) -> Iterator[str]:
        """Always the same short answer."""
        yield final("Sure, done.")


class RandomTool(LLM):
    """Calls one to three random tools with plausible inputs on random images, then claims success."""

    def __init__(self, tools: Sequence[type[Tool]], seed: int = 0) -> None:
        self.tools = offered_classes(tools)
        self.random = random.Random(seed)
        self._name = f"random-tool (seed {seed})"
        self._left = 0

    @property
    def name(self) -> str:
        """`random-tool (seed N)`."""
        return self._name

    def _args(self, tool: type[Tool]) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for spec in tool.inputs:
            if not spec.required and self.random.random() < 0.7:
                continue
            if spec.kind == "image":
                args[spec.name] = f"img{self.random.randint(1, 3)}"
            elif spec.kind == "choice":
                args[spec.name] = self.random.choice(spec.choices)
            elif spec.kind in ("int", "float"):
                low = spec.minimum if spec.minimum is not None else 0
                high = spec.maximum if spec.maximum is not None else 512
                value = self.random.uniform(low, min(high, low + 512))
                args[spec.name] = round(value) if spec.kind == "int" else round(value, 2)
            elif spec.kind == "bool":
                args[spec.name] = self.random.random() < 0.5
            else:
                args[spec.name] = self.random.choice(["a cat", "the car", "make it blue", "what is this?"])
        return args

    def complete(self, messages: Sequence[Message], stop: Sequence[str] | None = None) -> Iterator[str]:
        """A random call, or (after a few) a final answer naming a random image."""
        last = text_of(messages[-1]) if messages else ""
        if not last.startswith("Observation:"):
            self._left = self.random.randint(1, 3)  # a new user message
        if self._left <= 0:
            yield final(f"Done: here is img{self.random.randint(1, 4)}.")
            return
        self._left -= 1
        tool = self.random.choice(self.tools)
        yield action(tool.name, self._args(tool))
