"""Native tool calls for the built-in planner: calls into the chat template's shape, `<tool_call>` blocks out."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from vchat.llm.base import Message, NativeCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"
# Qwen3.5's template writes calls as XML (`<function=NAME>` with `<parameter=KEY>` blocks); Qwen2.5/3 as a JSON
# object with `name` and `arguments`. A small model may write either, so both are read.
_FUNCTION = re.compile(r"<function=([^>\n]+)>(.*?)(?:</function>|\Z)", re.DOTALL)
_PARAMETER = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?(?:</parameter>|(?=<parameter=)|\Z)", re.DOTALL)


def template_calls(messages: Sequence[Message], chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copy each assistant message's tool calls onto its chat-template twin, with arguments as a mapping.

    Chat templates iterate `arguments` as key/value pairs, while the OpenAI shape keeps them as JSON text;
    text that is not a JSON object (the model's own mistake, already answered by the binder) stays text.
    `chat` is `pixels.template_messages(messages)[0]`: one entry per message, in order.
    """
    out: list[dict[str, Any]] = []
    for message, entry in zip(messages, chat, strict=True):
        calls = message.get("tool_calls")
        if calls:
            entry = {**entry, "tool_calls": [_template_call(call) for call in calls]}
        out.append(entry)
    return out


def _template_call(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    raw = function.get("arguments", "")
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        parsed = raw
    function["arguments"] = parsed if isinstance(parsed, dict) else raw
    return {**call, "function": function}


class CallSplitter:
    """Splits a streamed reply into text for the user and the `<tool_call>` blocks that follow it.

    Text is passed on as it comes, except a tail that could be the start of `<tool_call>`; from the first
    `<tool_call>` on, everything is kept for `calls()`.
    """

    def __init__(self) -> None:
        self._held = ""
        self._calls: str | None = None

    def feed(self, piece: str) -> str:
        """The part of `piece` that is plain text and safe to show now."""
        if self._calls is not None:
            self._calls += piece
            return ""
        text = self._held + piece
        at = text.find(OPEN)
        if at >= 0:
            self._calls, self._held = text[at:], ""
            return text[:at]
        keep = next((n for n in range(min(len(OPEN) - 1, len(text)), 0, -1) if OPEN.startswith(text[-n:])), 0)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """Text still held back at the end of the reply (it never became a `<tool_call>`)."""
        held, self._held = self._held, ""
        return held

    def calls(self) -> list[NativeCall]:
        """The calls the reply made, in order (empty when it made none)."""
        return parse_calls(self._calls or "")


def parse_calls(text: str) -> list[NativeCall]:
    """Every `<tool_call>` block in `text`, the last one possibly unterminated (cut at the token cap)."""
    calls: list[NativeCall] = []
    for index, block in enumerate(_blocks(text)):
        name, arguments = _read_block(block.strip())
        calls.append(NativeCall(f"call_{index}", name, arguments))
    return calls


def _blocks(text: str) -> list[str]:
    blocks: list[str] = []
    rest = text
    while (start := rest.find(OPEN)) >= 0:
        rest = rest[start + len(OPEN) :]
        end = rest.find(CLOSE)
        blocks.append(rest if end < 0 else rest[:end])
        rest = "" if end < 0 else rest[end + len(CLOSE) :]
    return blocks


def _read_block(block: str) -> tuple[str, str]:
    """(tool name, arguments as JSON text); what cannot be read goes on as is, for the binder to explain."""
    function = _FUNCTION.search(block)
    if function is not None:
        values = {key.strip(): _value(value) for key, value in _PARAMETER.findall(function.group(2))}
        return function.group(1).strip(), json.dumps(values, ensure_ascii=False)
    try:
        data = json.loads(block)
    except ValueError:
        return "", block
    if not isinstance(data, dict):
        return "", block
    arguments = data.get("arguments", data.get("parameters", {}))
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return str(data.get("name", "")), text


def _value(text: str) -> Any:
    """A parameter's value: JSON when it reads as JSON (numbers, booleans, lists), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text
