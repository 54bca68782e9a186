"""Earlier turns as the model sees them: the user message as sent, a compact record of the tool steps, the answer.

One pure function (`messages`) turns the list of turns into chat messages, used both by a
live session and by `--resume` (which rebuilds the same turns from the transcript), so the
two send byte-for-byte the same requests and providers' prompt caches keep working.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vchat.llm.base import Message
from vchat.tools.base import Tool

TEXT_MAX = 80  # characters of a text result (caption, answer) kept in a step record
WHY_MAX = 120  # characters of a failure reason kept in a step record
VALUE_MAX = 200  # characters of one input value (a prompt) kept in a step record
SUMMARY_MAX = 100  # characters of a user message or an answer in a condensed turn
INTERRUPTED = "(interrupted)"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(value: Any) -> str:
    handle = getattr(value, "handle", None)
    if isinstance(handle, str):
        return handle
    if isinstance(value, str):
        return json.dumps(_clip(value, VALUE_MAX), ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value, default=str)


def call_text(tool: Tool, args: Mapping[str, Any]) -> str:
    """`instruct_edit(img2, "make it winter")`: images and required values in order, other inputs named
    only when they differ from the default (a family's selector is always named)."""
    cls = type(tool)
    specs = {f.name: f for f in cls.inputs}
    members: Mapping[str, type[Tool]] = getattr(cls, "members", {})
    selector = getattr(cls, "selector", None)
    choice = args.get(selector) if selector else None
    if isinstance(choice, str) and choice in members:
        specs.update({f.name: f for f in members[choice].inputs})
    parts: list[str] = []
    for name in specs:  # declared order: the image first, then the selector, then the rest
        if name not in args:
            continue
        spec, value = specs[name], args[name]
        if name == selector:
            parts.append(f"{name}={_value(value)}")
        elif spec.required:
            parts.append(_value(value))
        elif value is not None and value != spec.default:
            parts.append(f"{name}={_value(value)}")
    return f"{cls.name}({', '.join(parts)})"


def raw_call_text(tool: str, raw_input: str) -> str:
    """A call whose input could not be bound, as the model wrote it (clipped)."""
    return f"{tool}({_clip(raw_input, VALUE_MAX)})"


def failed_record(call: str, why: str) -> str:
    """`detect_objects(img3, "cat") failed: no cat found`."""
    return f"{call} failed: {_clip(why, WHY_MAX)}"


def made_record(call: str, handles: Sequence[str], text: str) -> str:
    """`img3 = instruct_edit(img2, "make it winter")`, or `caption_image(img1) -> "a dog"` for text results."""
    if handles:
        return f"{', '.join(handles)} = {call}"
    return f"{call} -> {json.dumps(_clip(text, TEXT_MAX), ensure_ascii=False)}"


@dataclass
class Turn:
    """One finished, failed or interrupted turn: what history keeps of it."""

    text: str  # the user's message with image paths replaced by handles (for condensing)
    content: str  # the user message exactly as sent (with the images note)
    records: list[str] = field(default_factory=list)
    answer: str | None = None
    ending: str | None = None  # final | error | interrupted; None while running

    def close(self, ending: str, answer: str | None = None) -> None:
        """End the turn once; later calls (a cancel after the answer) change nothing."""
        if self.ending is None:
            self.ending, self.answer = ending, answer

    @property
    def reply(self) -> str:
        """What the assistant is recorded as having said: the answer, or why there is none."""
        if self.ending == "final":
            return self.answer or ""
        if self.ending == "error":
            return f"(stopped: {self.answer})"
        return INTERRUPTED


def turn_messages(turn: Turn, style: str = "react") -> list[Message]:
    """The user message as sent, then one assistant message: the tool steps it took and its answer.

    `style` react ends the answer as the ReAct format does (`AI: ...`); tools (native tool
    calling) gives the answer as plain text.
    """
    steps = "Tool steps:\n" + "\n".join(turn.records) + "\n" if turn.records else ""
    said = turn.reply if style == "tools" else f"Thought: Do I need to use a tool? No\nAI: {turn.reply}"
    return [{"role": "user", "content": turn.content}, {"role": "assistant", "content": f"{steps}{said}"}]


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 4 characters a token for English and JSON)."""
    return len(text) // 4 + 1


def _summary_line(turn: Turn) -> str:
    steps = "; ".join(turn.records)
    did = f" [{steps}]" if steps else ""
    return f"- {_clip(turn.text, SUMMARY_MAX)}{did} -> {_clip(turn.reply, SUMMARY_MAX)}"


def _summary(turns: Sequence[Turn], budget: int) -> str:
    """One line per condensed turn, newest kept when even the lines outgrow a third of the budget."""
    lines = [_summary_line(t) for t in turns]
    dropped = 0
    while len(lines) > 1 and estimate_tokens("\n".join(lines)) > budget // 3:
        lines.pop(0)
        dropped += 1
    head = f"({dropped} older turns left out)\n" if dropped else ""
    return f"(Earlier turns, condensed:\n{head}" + "\n".join(lines) + ")\n\n"


LOW_WATER = 0.6  # when condensing, condense until the history is this share of the budget


def condensed_count(turns: Sequence[Turn], budget: int, style: str = "react") -> int:
    """How many of the oldest turns are condensed: replayed turn by turn, moving only when over budget.

    The count is a pure function of the turns and the budget (the same live and resumed),
    and each move leaves room for several more turns, so the requests' prefix stays the
    same (cacheable) between moves. The newest turn is always kept in full.
    """
    costs = [sum(estimate_tokens(str(m["content"])) for m in turn_messages(t, style)) for t in turns]
    cut = 0

    def size(cut: int, end: int) -> int:
        return (estimate_tokens(_summary(turns[:cut], budget)) if cut else 0) + sum(costs[cut:end])

    for end in range(1, len(turns) + 1):
        if size(cut, end) <= budget:
            continue
        while cut < end - 1 and size(cut, end) > budget * LOW_WATER:
            cut += 1
    return cut


def messages(turns: Sequence[Turn], budget: int = 0, style: str = "react") -> list[Message]:
    """The history messages for these turns, the oldest condensed into one note when over `budget` tokens.

    `budget` 0 never condenses. The note of condensed turns goes in front of the first
    turn kept in full (no invented messages).
    """
    done = [t for t in turns if t.ending is not None]
    cut = condensed_count(done, budget, style) if budget > 0 else 0
    out: list[Message] = []
    for index, turn in enumerate(done[cut:]):
        pair = turn_messages(turn, style)
        if index == 0 and cut:
            pair[0] = {"role": "user", "content": _summary(done[:cut], budget) + str(pair[0]["content"])}
        out.extend(pair)
    return out
