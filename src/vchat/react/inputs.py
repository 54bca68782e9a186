"""An action's input unwrapped: one layer of fence or quotes, chatter after a JSON value, call-style arguments."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from vchat.react.shapes import CUT_OBSERVATION, QUOTE_PAIRS


def clean_input(text: str) -> str:
    """The input text with one layer of fence or quotes removed and trailing chatter after a JSON value cut."""
    text = CUT_OBSERVATION.sub("", text.strip()).strip()
    text = unquote(unfence(text))
    if text[:1] in ("{", "["):
        end = balanced_end(text)
        if end is not None and text[end:].strip():
            text = text[:end]
    return text


def unfence(text: str) -> str:
    """The text inside a code fence (one line or several), or the text itself when it is not fenced."""
    text = text.strip()
    if not text.startswith("```"):
        return text
    single = re.fullmatch(r"```(.*?)```", text, re.DOTALL)
    if single and "\n" not in single.group(1):
        return single.group(1).strip()
    body = text.split("\n", 1)[1] if "\n" in text else ""
    closing = body.rfind("```")
    return (body[:closing] if closing != -1 else body).strip()


def unquote(text: str) -> str:
    """The text inside one pair of matching quotes or backticks, when they wrap all of it."""
    if len(text) >= 2 and text[0] in QUOTE_PAIRS and text[-1] == QUOTE_PAIRS[text[0]]:
        inner = text[1:-1]
        if text[0] not in inner and QUOTE_PAIRS[text[0]] not in inner:
            return inner.strip()
    return text


def balanced_end(text: str) -> int | None:
    """Index just past the bracketed value that opens `text` (JSON or a Python literal), else None."""
    depth, quote, escaped = 0, "", False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def args_to_input(args: str) -> str:
    """Arguments of a call-style action as a tool input: keywords become a JSON object."""
    args = args.strip()
    if not args or args[0] in "{[":
        return args
    pieces = _split_top_level(args)
    if all(re.match(r"^\s*[A-Za-z_]\w*\s*=", piece) for piece in pieces):
        fields = {}
        for piece in pieces:
            key, value = piece.split("=", 1)
            fields[key.strip()] = _literal(value.strip())
        return json.dumps(fields)
    return ", ".join(unquote(piece.strip()) for piece in pieces)


def _literal(value: str) -> Any:
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are outside quotes and brackets."""
    pieces, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote and text[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    return [piece for piece in pieces if piece.strip()]
