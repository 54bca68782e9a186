"""A scripted language model that plays back canned replies, for tests and demos (`--llm scripted:FILE`).

Replies are played in order, one per `complete` call, each streamed in a few chunks and cut at the
`stop` strings like a real server would. The messages of every call are kept in `.calls`.

A script file is either

- JSON: a list whose items are strings (the reply) or objects::

      [
        "Thought: Do I need to use a tool? No\\nAI: Hello!",
        {"reply": "Thought: ...", "delay": 0.5, "chunk_delay": 0.05},
        {"error": "the backend fell over"}
      ]

  `reply` is the text; `delay` the seconds to wait before the reply starts; `chunk_delay` the seconds
  between streamed chunks; `error` makes that call raise LLMError with this message instead.

- plain text (any file that does not start with `[`): replies separated by a line holding only `---`::

      Thought: Do I need to use a tool? Yes
      Action: canny_edges
      Action Input: img1
      ---
      Thought: Do I need to use a tool? No
      AI: Here are the edges, img2.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vchat.errors import LLMError
from vchat.llm.base import LLM, Message, cut_at_stop

_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_ITEM_KEYS = {"reply", "delay", "chunk_delay", "error"}


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted turn: the reply text, timing, or an error to raise instead."""

    reply: str = ""
    delay: float = 0.0
    chunk_delay: float = 0.0
    error: str | None = None


class ScriptedLLM(LLM):
    """Plays back scripted replies in order; records the messages of each call in `.calls`."""

    def __init__(self, replies: Sequence[str | ScriptedReply], name: str = "scripted", chunks: int = 4) -> None:
        self.replies = [r if isinstance(r, ScriptedReply) else ScriptedReply(reply=r) for r in replies]
        self.calls: list[list[Message]] = []
        self.stops: list[list[str] | None] = []
        self._name = name
        self._chunks = max(1, chunks)

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedLLM:
        """Load a script (JSON list or `---`-separated text); a bad file is a one-line LLMError."""
        from vchat.userfiles import UserFileError, read_text

        path = Path(path)
        try:
            text = read_text(path, "scripted backend: file")
        except UserFileError as exc:
            raise LLMError(str(exc)) from None
        if text.lstrip().startswith("["):
            replies = _parse_json(text, path)
        else:
            replies = [ScriptedReply(reply=part.strip("\n")) for part in _SEPARATOR.split(text)]
            # A trailing separator or an empty file leaves empty parts; they are not replies.
            replies = [r for r in replies if r.reply.strip()]
        if not replies:
            raise LLMError(f"scripted backend: {path} holds no replies")
        return cls(replies, name=f"scripted:{path.name}")

    @property
    def name(self) -> str:
        """`scripted` or `scripted:FILE`."""
        return self._name

    @property
    def remaining(self) -> int:
        """How many replies have not been played yet."""
        return len(self.replies) - len(self.calls)

    def __repr__(self) -> str:
        return f"ScriptedLLM({self._name!r}, {len(self.calls)}/{len(self.replies)} replies used)"

    def complete(self, messages: Sequence[Message], stop: Sequence[str] | None = None) -> Iterator[str]:
        """Stream the next scripted reply in a few chunks, cut at the first stop string."""
        # Record and take the reply at call time, not at first iteration: tests count calls even when
        # the caller never consumes the stream.
        used = len(self.calls)
        if used >= len(self.replies):
            raise LLMError(f"scripted backend has no more replies ({used} used)")
        self.calls.append([Message(role=m["role"], content=m["content"]) for m in messages])
        self.stops.append(list(stop) if stop else None)
        item = self.replies[used]
        return self._play(item, stop)

    def _play(self, item: ScriptedReply, stop: Sequence[str] | None) -> Iterator[str]:
        if item.delay > 0:
            time.sleep(item.delay)
        if item.error is not None:
            raise LLMError(item.error)
        text, _ = cut_at_stop(item.reply, stop)
        size = max(1, -(-len(text) // self._chunks))  # ceil: at most `chunks` pieces
        for i, start in enumerate(range(0, len(text), size)):
            if i and item.chunk_delay > 0:
                time.sleep(item.chunk_delay)
            yield text[start : start + size]


def _parse_json(text: str, path: Path) -> list[ScriptedReply]:
    """Replies from a JSON script; every problem names the file and the item."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LLMError(f"scripted backend: {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, list):
        raise LLMError(f"scripted backend: {path} must hold a JSON list of replies")
    replies: list[ScriptedReply] = []
    for index, entry in enumerate(data):
        where = f"scripted backend: {path} item {index}"
        if isinstance(entry, str):
            replies.append(ScriptedReply(reply=entry))
            continue
        if not isinstance(entry, dict):
            raise LLMError(f"{where} must be a string or an object, not {type(entry).__name__}")
        unknown = set(entry) - _ITEM_KEYS
        if unknown:
            raise LLMError(f"{where} has unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(_ITEM_KEYS))})")
        if "reply" not in entry and "error" not in entry:
            raise LLMError(f"{where} needs a 'reply' or an 'error'")
        reply, error = entry.get("reply", ""), entry.get("error")
        if not isinstance(reply, str) or (error is not None and not isinstance(error, str)):
            raise LLMError(f"{where}: 'reply' and 'error' must be strings")
        timing = {}
        for key in ("delay", "chunk_delay"):
            value = entry.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise LLMError(f"{where}: {key!r} must be a number of seconds >= 0")
            timing[key] = float(value)
        replies.append(ScriptedReply(reply=reply, error=error, **timing))
    return replies
