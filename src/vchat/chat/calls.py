"""One tool call made by a person (`run --tool`, `/tool`, batch, MCP): the tool looked up, its inputs filled in.

Every front end asks here, so an unknown tool and a text with no field to go to read the same everywhere;
binding the values to the tool's fields is `chat.binding`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from vchat.errors import ToolInputError, UsageError
from vchat.tools.base import Tool


class UnknownTool(UsageError):
    """A call named no tool of the set (the message suggests close names and where they are listed)."""


def unknown_tool_message(name: str, known: list[str], lister: str = "`vchat tools`") -> str:
    """`unknown tool 'canny'; did you mean canny_edges?` (close names, or names it is a part of)."""
    close = [n for n in known if name and name.lower() in n.lower()]
    close += [n for n in difflib.get_close_matches(name, known, n=3, cutoff=0.6) if n not in close]
    hint = f"did you mean {' or '.join(close[:3])}? " if close else ""
    return f"unknown tool {name!r}; {hint}{lister} lists them"


def find_tool(tools: Mapping[str, Tool], name: str, lister: str = "`vchat tools`") -> Tool:
    """The tool `name` calls (a family or an old capability name alike); UnknownTool otherwise."""
    tool = tools.get(name)
    if tool is None:
        raise UnknownTool(unknown_tool_message(name, sorted(tools), lister))
    return tool


def fill_inputs(
    tool: type[Tool], given: Mapping[str, Any], images: Sequence[str] = (), text: str | None = None
) -> dict[str, Any]:
    """Named inputs for a call: the values given by name, then the images for the image fields not named
    (in order; the rest to a list field such as references), then `text` for the first required text field not named.

    A text with no field to go to is a ToolInputError that says how to give values instead.
    """
    named: dict[str, Any] = dict(given)
    left = list(images)
    for spec in tool.inputs:
        if spec.name in named:
            continue
        if spec.kind == "image" and left:
            named[spec.name] = left.pop(0)
        elif spec.kind == "text" and spec.required and text:
            named[spec.name] = text
            text = None
    # Images left after the single-image fields go to a list field (instruct_edit's references), in order.
    for spec in tool.inputs:
        if spec.kind == "images" and left and spec.name not in named:
            named[spec.name], left = left, []
    if text:
        raise ToolInputError(f"{tool.name} has no text input for {text!r}; use --arg KEY=VALUE")
    return named
