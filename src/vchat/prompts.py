"""The system prompt and the short messages vchat writes to the model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from vchat.tools.base import Field, Tool

_INTRO = """You are vchat, an assistant that sees, makes and edits images by calling visual tools.
You cannot see images yourself: you learn about them only from tool observations. Each image
is named by a handle such as img1, img2. Never invent a handle or a file name; use only the
images listed in the conversation. Every new image a tool makes gets a new handle. Be literal
about what the tools returned: if a tool failed or found nothing, say so, and do not quietly use
another tool to pretend the task succeeded. Prefer the most recent image when the user says
"it" or "the image". Keep answers short and name the images you made."""

_FORMAT = """To use a tool, reply exactly in this format and then stop:

Thought: Do I need to use a tool? Yes
Action: the tool name, one of [{names}]
Action Input: the input as a JSON object, e.g. {{"image": "img1"}}

vchat then runs the tool and answers with a line starting "Observation:". Never write the
Observation yourself. When you are done, or need no tool, reply in this format:

Thought: Do I need to use a tool? No
AI: your answer to the user"""


# An optional field shared (same name, kind, description) by this many tools is described once.
_COMMON_MIN_TOOLS = 3


def _common_fields(tools: Sequence[type[Tool]]) -> dict[tuple[str, str, str], Field]:
    counts = Counter((f.name, f.kind, f.description) for t in tools for f in t.inputs if not f.required)
    first: dict[tuple[str, str, str], Field] = {}
    for tool in tools:
        for f in tool.inputs:
            key = (f.name, f.kind, f.description)
            if counts[key] >= _COMMON_MIN_TOOLS:
                first.setdefault(key, f)
    return first


def _tool_spec(tool: type[Tool], common: dict[tuple[str, str, str], Field]) -> str:
    lines = [f"{tool.name}: {tool.description}"]
    shared = []
    for f in tool.inputs:
        if (f.name, f.kind, f.description) in common:
            shared.append(f"{f.name}={f.default!r}")
        else:
            lines.append(f"    - {f.describe()}")
    if shared:
        lines.append(f"    - also: {', '.join(shared)}")
    if not tool.inputs:
        lines.append("    (no input)")
    return "\n".join(lines)


def system_prompt(tools: Iterable[type[Tool]]) -> str:
    """Build the system prompt from the tool specs; identical for identical tool sets.

    Options many tools share (steps, guidance, seed…) are described once, and each tool
    lists only their defaults: the prompt stays small enough for local models' contexts.
    """
    ordered = sorted(tools, key=lambda t: t.name)
    common = _common_fields(ordered)
    specs = "\n".join(_tool_spec(t, common) for t in ordered)
    names = ", ".join(t.name for t in ordered)
    shared = ""
    if common:
        described = "\n".join(
            f"    - {f.describe(with_default=False)}" for f in sorted(common.values(), key=lambda f: f.name)
        )
        shared = f"\n\nOptions listed under 'also' (any may be left out):\n{described}"
    return f"{_INTRO}\n\nTOOLS\n-----\n{specs}{shared}\n\nFORMAT\n------\n{_FORMAT.format(names=names)}\n"


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


def step_limit(max_steps: int) -> str:
    """What the user hears when the model used every allowed step without answering."""
    return f"stopped after {max_steps} tool steps without a final answer (raise the limit with --max-steps)"
