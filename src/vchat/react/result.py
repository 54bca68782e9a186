"""What one reply means (a tool call or a final answer) and the format reminder sent back when it means nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vchat.errors import ParseError


@dataclass(frozen=True)
class ToolCall:
    """The model asks to run `tool`; `input` is its raw input with one layer of quoting removed."""

    tool: str
    input: str


@dataclass(frozen=True)
class FinalAnswer:
    """The model's answer to the user (stripped, inner newlines kept)."""

    text: str


FORMAT_REMINDER = (
    "Reply in exactly one of these two forms:\n"
    "Thought: Do I need to use a tool? Yes\nAction: TOOL\nAction Input: INPUT\n"
    "or\n"
    "Thought: Do I need to use a tool? No\nAI: your answer"
)


def error(why: str, tools: Sequence[str] = (), *, list_tools: bool = False) -> ParseError:
    """A short reminder: what was wrong, then the two forms (tool names only when the name was the problem)."""
    message = f"Could not read your reply: {why}. {FORMAT_REMINDER}"
    if tools and list_tools:
        message += "\nTOOL is one of: " + ", ".join(tools)
    return ParseError(message)
