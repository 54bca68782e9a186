"""The system prompt and the short messages vchat writes to the model."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from vchat.tools.base import Field, Tool, offered

_INTRO = """You are vchat: you see, make and edit images by calling tools. You cannot see images; you learn \
about them from tool observations. Images are named img1, img2…; each new image gets a new name. Use only \
names from the conversation, never invent one. If a tool failed or found nothing, say so; do not pretend \
with another tool. "It" means the latest image. Answer briefly and name the images you made."""

_FORMAT = """To use a tool, reply exactly so, then stop:
Thought: Do I need to use a tool? Yes
Action: one tool name
Action Input: a JSON object, e.g. {"image": "img1"}
vchat runs it and replies "Observation: …" (never write it yourself). To answer, or with no tool:
Thought: Do I need to use a tool? No
AI: your answer"""

# With vision on, said in place of the blind sentence: the planner is shown images as pixels.
_BLIND = "You cannot see images; you learn about them from tool observations."
SEES = "You can see the images shown to you: look before editing, and check a result before answering."


def _intro(vision: bool) -> str:
    return _INTRO.replace(_BLIND, SEES) if vision else _INTRO


# An optional field shared (same name, kind, description) by this many tools is described once.
_COMMON_MIN_TOOLS = 3
SHARED_MARK = "+"


def _key(f: Field) -> tuple[str, str, str]:
    return (f.name, f.kind, f.description)


def shared_fields(tools: Sequence[type[Tool]]) -> dict[tuple[str, str, str], Field]:
    """Optional fields that enough tools declare alike to be described once, not per tool."""
    counts = Counter(_key(f) for t in tools for f in t.inputs if not f.required and f.default is not None)
    first: dict[tuple[str, str, str], Field] = {}
    for tool in tools:
        for f in tool.inputs:
            if counts[_key(f)] >= _COMMON_MIN_TOOLS:
                first.setdefault(_key(f), f)
    return first


def _value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and value == int(value):
        return f"{value:g}"
    return str(value)


def _param(f: Field) -> str:
    """One input in a signature: `name` (required), `name=default`, `name?` (depends on the kind chosen)."""
    if f.required:
        return f.name
    if f.default is None:
        return f"{f.name}?"
    if f.kind == "choice":
        rest = [c for c in f.choices if c != f.default]
        return f"{f.name}={'|'.join([str(f.default), *rest])}"
    return f"{f.name}={_value(f.default)}"


def tool_line(tool: type[Tool], shared: Mapping[tuple[str, str, str], Field]) -> str:
    """A tool as one prompt line: compact signature, a mark when it takes the shared options, its brief."""
    params = ", ".join(_param(f) for f in tool.inputs if _key(f) not in shared)
    mark = SHARED_MARK if any(_key(f) in shared for f in tool.inputs) else ""
    choices = "".join(f" {f.name}: {'|'.join(f.choices)}." for f in tool.inputs if f.required and f.kind == "choice")
    return f"{tool.name}({params}){mark}:{choices} {tool.brief or tool.description}"


def _shared_line(f: Field) -> str:
    bounds = ""
    if f.minimum is not None or f.maximum is not None:
        lo = "" if f.minimum is None else f"{f.minimum:g}"
        hi = "" if f.maximum is None else f"{f.maximum:g}"
        bounds = f" {lo}..{hi}"
    if f.kind == "choice":
        bounds = f" {'|'.join(f.choices)}"
    return f"{f.name}{bounds} ({f.description})"


def system_prompt(tools: Iterable[type[Tool]], *, vision: bool = False) -> str:
    """Build the system prompt from the tool specs; identical for identical tool sets.

    One line per tool (`name(inputs): brief`); options many tools share (steps, guidance,
    seed…) are described once. Families hide their members, whose names stay valid as
    aliases but are not listed: every token here is paid on every step.
    """

    ordered = sorted(offered(tools), key=lambda t: t.name)
    shared = shared_fields(ordered)
    lines = "\n".join(tool_line(t, shared) for t in ordered)
    options = ""
    if shared:
        said = "; ".join(_shared_line(f) for f in sorted(shared.values(), key=lambda f: f.name))
        options = f"\nTools marked {SHARED_MARK} also take: {said}."
    head = "Tools (inputs with = or ? are optional; ? means only for some kinds):"
    return f"{_intro(vision)}\n\n{head}\n{lines}{options}\n\n{_FORMAT}\n"


def tools_system_prompt(*, vision: bool = False) -> str:
    """The system prompt with native tool calling: the tools travel as function specs, not as text."""
    return f"{_intro(vision)}\nCall the tools as functions; when done, answer in plain text.\n"


def user_message(text: str, images_note: str | None) -> str:
    """A user's turn as the model sees it, with the session's images listed when there are any."""
    if not images_note:
        return text
    return f"{text}\n\n(Images in this session: {images_note})"


def observation(text: str) -> str:
    """The message that carries a tool's result back to the model."""
    return f"Observation: {text}"


def format_reminder(problem: str) -> str:
    """What the model hears after a reply the parser could not read."""
    return f"Observation: {problem}"


def _cap(max_tokens: int | None) -> str:
    return f"the token cap (max_tokens={max_tokens})" if max_tokens else "the token cap"


def cut_reply(max_tokens: int | None, *, native: bool = False) -> str:
    """What the model hears after a reply the server cut at the token cap: nothing of it was run."""
    shorter = (
        "call one tool with short arguments, or answer in fewer words"
        if native
        else "one Thought, one Action and one Action Input, or a short answer after `AI:`"
    )
    limit = f" ({max_tokens} tokens)" if max_tokens else ""
    return (
        f"Your reply was cut at the length limit{limit} before it ended, so nothing in it was run. "
        f"Reply again, shorter: {shorter}."
    )


def cut_notice(max_tokens: int | None, *, answer: bool) -> str:
    """The user's one line about a reply cut at the token cap: an answer shown as it is, or a step asked again."""
    if answer:
        return f"the answer was cut at {_cap(max_tokens)} and may be incomplete; raise `max_tokens` for longer replies"
    return f"the model's reply was cut at {_cap(max_tokens)} before it ended; nothing was run, asking for a shorter one"


def cut_limit(max_tokens: int | None, tries: int) -> str:
    """What the user hears when the model's last try, too, ran into the token cap."""
    cap = _cap(max_tokens)
    return f"the model's replies could not be used after {tries} tries (last: cut at {cap}); raise `max_tokens`"


def step_limit(max_steps: int) -> str:
    """What the user hears when the model used every allowed step without answering."""
    return (
        f"stopped after {max_steps} tool steps without a final answer "
        "(raise the limit: /steps N in the chat, --max-steps N for vchat run)"
    )


TOOL_TEXT_MAX = 500  # characters of a tool's own text an observation keeps (long detection lists)


def cap_tool_text(text: str, limit: int = TOOL_TEXT_MAX) -> str:
    """A tool's text cut to whole lines within `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    lines = text.split("\n")
    for line in lines:
        if used + len(line) + 1 > limit:
            break
        kept.append(line)
        used += len(line) + 1
    if not kept:  # one very long line: cut inside it
        return text[: limit - 1] + f"… ({len(text) - limit + 1} more characters)"
    return "\n".join(kept) + f"\n… ({len(lines) - len(kept)} more lines)"
