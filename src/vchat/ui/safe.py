"""Neutralise control characters in text from outside vchat (model, server, files) before a terminal sees it.

A model reply holding `ESC ] 52 ; c ; … ESC \\` would write the user's clipboard, `ESC [ 2J`
clears the screen, a C1 `U+009B` is a one-character CSI on some terminals, and bidi overrides
make text read differently from what it is. Every such character is replaced by a visible
stand-in (`^[`, `<U+009B>`, `<U+202E>`), so nothing is silently hidden and the only escape
sequences vchat writes are its own styling and image previews.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Bidi embeddings, overrides and isolates (the "Trojan Source" characters), and the Arabic letter mark.
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
# Everything a terminal might act on, except newline and tab; lone surrogates cannot be encoded at all.
_UNSAFE = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}\\ud800-\\udfff]")
# Characters that stay legal inside JSON strings but a terminal may still act on (C1, bidi, line separators).
_JSON_UNSAFE = re.compile(f"[\\x7f-\\x9f{_BIDI}\\u2028\\u2029\\ud800-\\udfff]")


def _stand_in(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 0x40)  # caret notation: ESC -> ^[, NUL -> ^@, BEL -> ^G
    if code == 0x7F:
        return "^?"
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"  # an unpaired surrogate: not a character, so not printable either
    return f"<U+{code:04X}>"


def safe_text(text: object) -> str:
    """`text` with every control character but newline and tab shown visibly, never acted on.

    A carriage return ends a line (`\\r\\n` and a lone `\\r` become `\\n`) so it cannot hide the
    start of a line by writing over it.
    """
    value = text if isinstance(text, str) else str(text)
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE.sub(_stand_in, value)


def safe_line(text: object, limit: int | None = None) -> str:
    """`safe_text` on one line (runs of whitespace, newlines included, become one space), optionally cut."""
    one = " ".join(safe_text(text).split())
    if limit is not None and len(one) > limit:
        return one[: limit - 1] + "…"
    return one


def safe_json(data: Any) -> str:
    """JSON for stdout: UTF-8 text kept readable, but C1, bidi and lone surrogates written as `\\uXXXX`.

    Inside a JSON document these characters can only occur within strings, where the escape is
    equivalent, so the result parses to the same value.
    """
    text = json.dumps(data, ensure_ascii=False, default=str)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
