"""JSON action blobs ({"action": ..., "action_input": ...} and the variants models write) read as a step."""

from __future__ import annotations

import json
import re

from vchat.react.names import exact_tool, match_tool, norm
from vchat.react.result import FinalAnswer, ToolCall
from vchat.react.shapes import ANSWER_ACTIONS, ANSWER_FIELDS, BLOB_START, INPUT_KEYS, NAME_KEYS, WRAPPER_KEYS


def find_blob(text: str, tools: tuple[str, ...], anywhere: bool = False) -> ToolCall | FinalAnswer | None:
    """The first JSON action blob in `text` ({"action": ..., "action_input": ...} and its variants)."""
    decoder = json.JSONDecoder()
    starts: list[int] = [m.end() for m in BLOB_START.finditer(text)]
    if anywhere:
        starts += [m.start() for m in re.finditer(r"[{\[]", text)]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # not JSON, or nested absurdly deep
            continue
        step = _blob_step(value, tools)
        if step is not None:
            return step
    return None


def answer_text(given: str) -> str:
    """The answer of a final-answer pseudo-action, unwrapped from a one-field JSON object if it is one."""
    if given.lstrip().startswith("{"):
        try:
            value = json.loads(given)
        except ValueError:
            return given.strip()
        if isinstance(value, dict) and len(value) == 1:
            ((key, text),) = value.items()
            if norm(str(key)) in ANSWER_FIELDS and isinstance(text, str):
                return text.strip()
    return given.strip()


def _blob_step(value: object, tools: tuple[str, ...], depth: int = 0) -> ToolCall | FinalAnswer | None:
    if depth > 3:
        return None
    if isinstance(value, list):
        return next((s for s in (_blob_step(v, tools, depth + 1) for v in value[:3]) if s is not None), None)
    if not isinstance(value, dict):
        return None
    fields = {norm(str(key)): item for key, item in value.items()}
    if isinstance(fields.get("final_answer"), str):
        return FinalAnswer(fields["final_answer"].strip())
    for key in WRAPPER_KEYS:
        if key in fields:
            return _blob_step(fields[key], tools, depth + 1)
    name_key = next((key for key in NAME_KEYS if key in fields), None)
    if name_key is None:
        return None
    name = fields[name_key]
    if isinstance(name, dict):  # {"function": {"name": ..., "arguments": ...}}
        return _blob_step(name, tools, depth + 1)
    if not isinstance(name, str) or not name.strip():
        return None
    input_key = next((key for key in INPUT_KEYS if key in fields), None)
    if name_key == "name" and input_key is None:
        return None  # {"name": "Bob"} is data, not a call
    given = _blob_input(fields[input_key] if input_key else None)
    if exact_tool(name, tools) is None and norm(name) in ANSWER_ACTIONS:
        return FinalAnswer(answer_text(given))
    return ToolCall(match_tool(name, tools), given)


def _blob_input(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)
