"""Which tool an action's text names: exact names first, then a tool mentioned as a word."""

from __future__ import annotations

import re

from vchat.react.result import error


def norm(name: str) -> str:
    """A name compared without case, and with spaces and dashes as underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def clean_name(text: str) -> str:
    """The action text without decoration: backticks, quotes, brackets, bold, a trailing period."""
    text = text.replace("\\_", "_").strip()
    previous = None
    while previous != text:
        previous = text
        text = text.strip().strip("`*\"'“”").strip()
        text = re.sub(
            r"^\[(.*)\]$|^<(.*)>$|^\{(.*)\}$|^\((.*)\)$", lambda m: next(g for g in m.groups() if g is not None), text
        )
        text = text.rstrip(".,;:!")
    return text


def exact_tool(name: str, tools: tuple[str, ...]) -> str | None:
    """The tool whose name this is (decoration and case aside), else None."""
    wanted = norm(clean_name(name))
    return next((tool for tool in tools if norm(tool) == wanted), None)


def match_tool(name: str, tools: tuple[str, ...]) -> str:
    """Map the action text to a known tool: exact, then a tool name mentioned as a word (first mention)."""
    cleaned = clean_name(name)
    if not tools:
        token = re.match(r"[\w.\-/]+", cleaned)
        return token.group(0).rstrip(".-") if token else cleaned
    exact = exact_tool(cleaned, tools)
    if exact is not None:
        return exact
    mentions: list[tuple[int, int, str]] = []
    for tool in tools:
        for match in re.finditer(rf"(?<![A-Za-z0-9_]){re.escape(tool)}(?![A-Za-z0-9_])", cleaned, re.IGNORECASE):
            mentions.append((match.start(), -len(tool), tool))
    distinct = {tool for _, _, tool in mentions}
    if len(distinct) >= 3:
        raise error("`Action:` must name exactly one tool, not a list of them", tools, list_tools=True)
    if mentions:
        return min(mentions)[2]
    return cleaned.split("\n", 1)[0]
