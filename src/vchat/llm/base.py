"""The LLM protocol every backend implements, and helpers shared by backends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class NativeCall:
    """One function call a model asked for with native tool calling (`protocol = "tools"`)."""

    id: str
    name: str
    arguments: str  # the JSON text the model wrote (may be invalid: the binder says so)


@dataclass(frozen=True)
class ToolCalls:
    """The last item of a `complete_with_tools` stream when the model called tools (in its order)."""

    calls: tuple[NativeCall, ...]


class ToolCallingLLM(LLM, Protocol):
    """A backend that also speaks native function calling; optional (see `supports_tools`).

    `complete_with_tools` streams the reply's text as `str` chunks and, when the model called
    tools, ends with one `ToolCalls`. It raises vchat.errors.ToolsUnsupported when the server
    refuses the `tools` parameter (the agent then falls back to the text protocol).
    """

    def complete_with_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> Iterator[str | ToolCalls]:
        """Yield text chunks, then a ToolCalls item if the model called any tools."""
        ...


def cut_at_cap(llm: object) -> bool:
    """True when the backend says its last reply ended at the token cap (`max_tokens`), not where the model stopped.

    Backends may set `last_finish` after a reply ("stop", "length", "tool_calls"); those that
    do not are taken to have finished normally.
    """
    return getattr(llm, "last_finish", None) == "length"


def supports_tools(llm: object) -> bool:
    """True when the backend implements `complete_with_tools`."""
    return callable(getattr(llm, "complete_with_tools", None))


def wire_message(message: Message) -> dict[str, Any]:
    """A message as sent to an OpenAI-compatible server (tool calls and tool results kept)."""
    out: dict[str, Any] = {"role": message["role"], "content": message["content"]}
    if "tool_calls" in message:
        out["tool_calls"] = message["tool_calls"]
    if "tool_call_id" in message:
        out["tool_call_id"] = message["tool_call_id"]
    return out


def cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut text at the first stop string (for servers that ignore or refuse `stop`)."""
    if not stop:
        return text, False
    positions = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True
