"""The LLM protocol every backend implements, and helpers shared by backends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, Required, TypedDict

# One part of a multimodal message, in OpenAI's shape: {"type": "text", "text": ...} or
# {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}.
ContentPart = dict[str, Any]


class Message(TypedDict, total=False):
    """One chat message in the OpenAI shape.

    `content` is plain text, or a list of content parts when the message carries images
    (vision). `tool_calls` / `tool_call_id` are used only by the native tool-calling
    protocol (`protocol = "tools"`), in OpenAI's shape.
    """

    role: Required[str]  # system | user | assistant | tool
    content: Required[str | list[ContentPart]]
    tool_calls: list[dict[str, Any]]
    tool_call_id: str


def text_of(message: Message) -> str:
    """The text of a message, with image parts left out (for backends and records that take text only)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")


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
