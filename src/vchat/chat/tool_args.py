"""Read `/tool NAME ARGS` the way a shell user types it: positional values and KEY=VALUE pairs."""

from __future__ import annotations

import re

from vchat.chat.binding import field_for_key
from vchat.errors import ToolInputError
from vchat.tools.base import Field, Tool

_KEY = re.compile(r"[A-Za-z_][\w-]*")


def usage(tool: type[Tool]) -> str:
    """`/tool canny_edges IMAGE [low=INT] [high=INT]`: how to call a tool by hand."""
    parts = []
    for spec in tool.inputs:
        if spec.required:
            parts.append(spec.name.upper())
        elif spec.kind == "choice":
            parts.append(f"[{spec.name}={'|'.join(spec.choices)}]")
        else:
            parts.append(f"[{spec.name}={spec.kind.upper()}]")
    return " ".join([f"/tool {tool.name}", *parts])


def _words(raw: str) -> list[tuple[str | None, str]]:
    """Split like a shell, simply: (key or None, value) per word.

    A quote opens a quoted stretch only at the start of a word or of a value (`prompt="a b"`),
    so apostrophes inside words (`what's`) stay as typed. `key=` counts only outside quotes.
    """
    words: list[tuple[str | None, str]] = []
    key: str | None = None
    current = ""
    started = quoted = False
    i = 0
    while i < len(raw):
        char = raw[i]
        i += 1
        if char.isspace():
            if started:
                words.append((key, current))
            key, current, started, quoted = None, "", False, False
            continue
        started = True
        if char in "\"'" and current == "":
            end = raw.find(char, i)
            if end < 0:
                raise ToolInputError(f"a {char} quote is not closed; put text with spaces in matching quotes")
            current, i, quoted = raw[i:end], end + 1, True
        elif char == "=" and key is None and not quoted and _KEY.fullmatch(current):
            key, current = current, ""
        else:
            current += char
    if started:
        words.append((key, current))
    return words


def is_legacy(raw: str) -> bool:
    """True for the forms the model's Action Input uses: a JSON object, or `img1, 50` (comma after the first value)."""
    text = raw.strip()
    if text.startswith("{"):
        return True
    first = text.split(None, 1)[0] if text else ""
    return first.endswith(",") or (first.count(",") > 0 and "=" not in first)


def parse_tool_args(tool: type[Tool], raw: str) -> dict[str, str]:
    """Named string values for `bind_named` from `img1 low=50`, `img1 vertical`, `img1 make it snow`.

    KEY=VALUE words name a field (the image field also answers to `image=`); the other words
    fill the remaining fields in declared order. A text field takes all the words left when
    no required field follows it (so prompts need no quotes), else one word (quote to group).
    """
    named: dict[str, str] = {}
    positional: list[str] = []
    for key, value in _words(raw):
        if key is None:
            positional.append(value)
            continue
        spec = field_for_key(tool, key)
        if spec is None:
            known = ", ".join(f.name for f in tool.inputs) or "none"
            raise ToolInputError(f"{tool.name} has no input {key!r} (inputs: {known}); {usage(tool)}")
        if spec.name in named:
            raise ToolInputError(f"{tool.name}: {spec.name} is given twice")
        named[spec.name] = value
    free = [spec for spec in tool.inputs if spec.name not in named]
    index = 0
    for position, spec in enumerate(free):
        if index >= len(positional):
            break
        take = 1
        if spec.kind == "text":
            later_required = sum(1 for f in free[position + 1 :] if f.required)
            if not any(f.kind == "text" and f.required for f in free[position + 1 :]):
                take = max(1, len(positional) - index - later_required)
        named[spec.name] = " ".join(positional[index : index + take])
        index += take
    if index < len(positional):
        extra = " ".join(positional[index:])
        raise ToolInputError(f"{tool.name}: no input left for {extra!r}; {usage(tool)}")
    return {spec.name: named[spec.name] for spec in tool.inputs if spec.name in named}


def completions(tool: type[Tool], word: str) -> list[tuple[str, str]]:
    """(completed word, what to show) for Tab on `word` after `/tool NAME`: field names, then choices after `=`."""
    key, sep, value = word.partition("=")
    if sep:
        spec = field_for_key(tool, key)
        if spec is None:
            return []
        options = list(spec.choices) if spec.kind == "choice" else (["true", "false"] if spec.kind == "bool" else [])
        return [(f"{key}={option}", option) for option in options if option.startswith(value)]
    return [
        (f"{spec.name}=", _describe(spec))
        for spec in tool.inputs
        if spec.name.startswith(word) and spec.kind != "image"
    ]


def _describe(spec: Field) -> str:
    kind = "|".join(spec.choices) if spec.kind == "choice" else spec.kind
    return f"{spec.name}= ({kind})"
