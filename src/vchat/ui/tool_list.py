"""The `vchat tools` listing as plain lines: the tools the model and MCP clients see, and the old names they cover."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from vchat.tools.base import Tool

# Into a pipe nothing is wrapped (`| grep` sees whole rows) and nothing is padded past its text.
NO_WRAP = 0


def tool_lines(tools: Iterable[type[Tool]], *, verbose: bool = False, width: int = NO_WRAP) -> list[str]:
    """One entry per tool: its name, its description, a family's choices with their old names, and (verbose) inputs.

    `width` wraps descriptions to a terminal's width (continuation lines indented under the description);
    NO_WRAP keeps each description on one line. No line ends in spaces.
    """
    listed = sorted(tools, key=lambda t: t.name)
    if not listed:
        return []
    name_w = max(len(t.name) for t in listed)
    indent = " " * (name_w + 2)
    lines: list[str] = []

    def add(first: str, text: str, lead: str) -> None:
        if width > len(lead) + 20:
            wrapped = textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=lead)
            lines.extend(wrapped or [first.rstrip()])
        else:
            lines.append((first + text).rstrip())

    for tool in listed:
        add(tool.name.ljust(name_w) + "  ", tool.description, indent)
        members = getattr(tool, "members", None)
        if members:
            selector = getattr(tool, "selector", "kind")
            choices = ", ".join(f"{choice} ({member.name})" for choice, member in members.items())
            add(indent + "  ", f"{selector}: {choices}", indent + "    ")
        if verbose:
            for field in tool.inputs:
                add(indent + "  • ", field.describe(), indent + "    ")
    return lines


def listing_width() -> int:
    """The width to wrap to: the terminal's when stdout is one (or COLUMNS when set), else NO_WRAP."""
    import os
    import shutil
    import sys

    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return NO_WRAP
