"""One model call on an OpenAI-compatible server: what its worker thread hands over, and what the reply said."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any


class Call:
    """What a worker thread hands to the caller of one `complete`: queued pieces, progress, a stop flag."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.received = 0
        self.abandoned = threading.Event()
        self.stream: Any = None  # the open response, so the caller can hang up on a worker stuck reading it


@dataclass
class ReplyInfo:
    """What the server said about the last reply: why it ended and the tokens it counted."""

    # "stop", "length" when cut at max_tokens, "tool_calls"; None if unknown.
    finish: str | None = None
    # (prompt tokens, completion tokens) when the server reported them.
    usage: tuple[int, int] | None = None

    def note_usage(self, response: Any) -> None:
        """Keep the token counts a response or stream chunk carries (servers send them at most once)."""
        usage = getattr(response, "usage", None)
        prompt, completion = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
        if isinstance(prompt, int) and isinstance(completion, int):
            self.usage = (prompt, completion)
