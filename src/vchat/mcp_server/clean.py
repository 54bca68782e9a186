"""Client values made encodable: a lone UTF-16 surrogate (valid in JSON's escapes, not in UTF-8) becomes U+FFFD."""

from __future__ import annotations

import re
from typing import Any, TypeVar

_SURROGATE = re.compile("[\ud800-\udfff]")
T = TypeVar("T")


def without_surrogates(value: T) -> T:
    """The same value with every lone surrogate in its strings (keys too, nested) replaced by U+FFFD."""
    cleaned: T = _clean(value)
    return cleaned


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# A \uD800-\uDFFF escape in JSON text: a high one followed by a low one is a pair (an emoji) and kept; any
# other is lone. The prefix keeps an escaped backslash (`\\uD800` is text, not an escape) out of the match.
_ESCAPE = re.compile(
    r"(?<!\\)((?:\\\\)*)(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2})"
)


def repair_json_line(line: str) -> str:
    """JSON text with every lone surrogate escape replaced by `\\ufffd` (pairs kept), so a strict parser takes it."""
    return _ESCAPE.sub(lambda m: m.group(1) + (m.group(2) if len(m.group(2)) == 12 else "\\ufffd"), line)


def repaired_message(exc: Exception) -> Any | None:
    """The JSON-RPC message a transport failed to parse only for a lone surrogate, parsed again; else None."""
    import mcp_types as types
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return None
    errors = exc.errors()
    raw = errors[0].get("input") if errors and errors[0].get("type") == "json_invalid" else None
    if not isinstance(raw, str | bytes):
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    fixed = repair_json_line(text)
    if fixed == text:
        return None
    try:
        return types.jsonrpc_message_adapter.validate_json(fixed, by_name=False)
    except ValidationError:
        return None
