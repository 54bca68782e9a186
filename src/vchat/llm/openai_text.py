"""Text of OpenAI-compatible replies and errors: stop strings cut across chunks, surrogate halves joined,
the human part of an error body, and server URLs as messages show them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from vchat.llm.base import cut_at_stop


def display_url(url: str) -> str:
    """The URL without credentials or trailing slash, for messages."""
    parts = urlparse(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}".rstrip("/") if parts.scheme else url.rstrip("/")


def host_label(url: str) -> str:
    """host[:port] of a URL, e.g. `api.openai.com` or `localhost:11434`."""
    parts = urlparse(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


class StopCutter:
    """Cuts a stream of text at the first stop string, holding back only a tail that could start one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = list(stops)
        self.buf = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """Text safe to emit now, and whether a stop string was reached (emit nothing after it)."""
        self.buf += piece
        text, hit = cut_at_stop(self.buf, self.stops)
        if hit:
            self.buf = ""
            return text, True
        # Keep the longest tail that is a proper prefix of a stop string: it may complete in the next piece.
        hold = 0
        for n in range(min(len(self.buf), max((len(s) for s in self.stops), default=1) - 1), 0, -1):
            tail = self.buf[-n:]
            if any(s.startswith(tail) for s in self.stops):
                hold = n
                break
        cut = len(self.buf) - hold
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out, False

    def flush(self) -> str:
        """Whatever is still held back once the stream has ended."""
        out, self.buf = self.buf, ""
        return out


def server_message(exc: Any) -> str:
    """The human part of an OpenAI-style error body, whatever shape the server used."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    if isinstance(body, str) and body.strip():
        return body
    message = str(getattr(exc, "message", "") or exc)
    # The client prefixes "Error code: 404 - "; the status is reported separately.
    return re.sub(r"^Error code: \d+ - ", "", message)


def fix_surrogates(text: str) -> str:
    """Join UTF-16 surrogate pairs the JSON decoder left as two halves; replace halves that stay alone."""
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def join_halves(held: str, delta: str) -> tuple[str, str]:
    """Text safe to pass on now and a high surrogate to hold for the next delta (`held` from the last call)."""
    text = held + delta
    held = text[-1] if text and "\ud800" <= text[-1] <= "\udbff" else ""
    return fix_surrogates(text[: len(text) - len(held)]), held
