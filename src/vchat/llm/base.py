"""The LLM protocol every backend implements, and helpers shared by backends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypedDict


class Message(TypedDict):
    """One chat message in the OpenAI shape."""

    role: str  # system | user | assistant
    content: str


class LLM(Protocol):
    """A chat model: streams the reply to a list of messages, stopping at any `stop` string."""

    @property
    def name(self) -> str:
        """Short description for the UI, e.g. `gpt-4o-mini @ api.openai.com`."""
        ...

    def complete(self, messages: Sequence[Message], stop: Sequence[str] | None = None) -> Iterator[str]:
        """Yield the reply in chunks as they arrive; raise vchat.errors.LLMError on failure."""
        ...


def cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut text at the first stop string (for servers that ignore or refuse `stop`)."""
    if not stop:
        return text, False
    positions = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True
