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
CONDENSE_BLOCK = 4  # older turns are condensed this many at a time, so the cut moves rarely
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
    for name, value in args.items():
        spec = specs.get(name)
        if spec is None:
            continue
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


def turn_messages(turn: Turn) -> list[Message]:
    """The user message as sent, then one assistant message: the tool steps it took and its answer."""
    steps = "Tool steps:\n" + "\n".join(turn.records) + "\n" if turn.records else ""
    return [
        {"role": "user", "content": turn.content},
        {"role": "assistant", "content": f"{steps}Thought: Do I need to use a tool? No\nAI: {turn.reply}"},
    ]


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 4 characters a token for English and JSON)."""
    return len(text) // 4 + 1


def _summary_line(turn: Turn) -> str:
    steps = "; ".join(turn.records)
    did = f" [{steps}]" if steps else ""
    return f"- {_clip(turn.text, SUMMARY_MAX)}{did} -> {_clip(turn.reply, SUMMARY_MAX)}"


def _summary(turns: Sequence[Turn]) -> str:
    lines = "\n".join(_summary_line(t) for t in turns)
    return f"(Earlier turns, condensed:\n{lines})\n\n"


def messages(turns: Sequence[Turn], budget: int = 0) -> list[Message]:
    """The history messages for these turns, condensing the oldest ones when over `budget` tokens.

    The cut between condensed and full turns is the smallest multiple of CONDENSE_BLOCK that
    fits (always keeping the newest turn in full), so it depends only on the turns and the
    budget: it is the same live and resumed, and it moves only every few turns, keeping the
    prefix of the requests stable for caching. `budget` 0 never condenses.
    """
    done = [t for t in turns if t.ending is not None]
    full = [turn_messages(t) for t in done]
    costs = [sum(estimate_tokens(str(m["content"])) for m in pair) for pair in full]
    cut = 0
    if budget > 0:
        while cut < len(done) - 1:
            head = estimate_tokens(_summary(done[:cut])) if cut else 0
            if head + sum(costs[cut:]) <= budget:
                break
            cut = min(cut + CONDENSE_BLOCK, len(done) - 1)
    out: list[Message] = []
    for index, pair in enumerate(full[cut:]):
        if index == 0 and cut:
            pair = [{"role": "user", "content": _summary(done[:cut]) + str(pair[0]["content"])}, pair[1]]
        out.extend(pair)
    return out
