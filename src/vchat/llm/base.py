"""The LLM protocol every backend implements, and helpers shared by backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict

from vchat.errors import LLMError, ToolsUnsupported

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


class LLM:
    """A chat model: streams the reply to a list of messages, stopping at any `stop` string.

    Backends subclass it, implement `name` and `complete`, and override what they can do beyond that;
    the defaults here say "cannot" (no native tools, no images, no usage), so callers ask, never probe.
    """

    # Native function calling (`complete_with_tools`); the agent falls back to ReAct without it.
    supports_tools: bool = False
    # Set when a server turned image parts down: images go as text from then on.
    vision_refused: bool = False
    # The cap on a reply's new tokens, when the backend has one (told to the model when a reply is cut).
    max_tokens: int | None = None
    # The server the backend talks to, when it is one (OpenAI-compatible URL ending in /v1).
    base_url: str | None = None
    # Why the last reply ended: "stop", "length" (cut at max_tokens), "tool_calls"; None when unknown.
    last_finish: str | None = None
    # (prompt tokens, completion tokens) of the last reply, when the backend counted them.
    last_usage: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        """Short description for the UI, e.g. `gpt-4o-mini @ api.openai.com`."""
        raise NotImplementedError

    @property
    def supports_vision(self) -> bool:
        """Whether the model takes images (`vision = "auto"` asks this)."""
        return False

    def complete(self, messages: Sequence[Message], stop: Sequence[str] | None = None) -> Iterator[str]:
        """Yield the reply in chunks as they arrive; raise vchat.errors.LLMError on failure."""
        raise NotImplementedError

    def complete_with_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> Iterator[str | ToolCalls]:
        """Native tool calling: text chunks, then one ToolCalls item if the model called tools.

        Raises ToolsUnsupported when the backend or its server has none (the agent then uses ReAct).
        """
        raise ToolsUnsupported(f"{self.name} has no native tool calling")

    def notice(self) -> str | None:
        """A line to show once when a session starts with this backend (a first download, a missing extra)."""
        return None

    def expect(self, spec: Any) -> None:
        """The shape the next reply may take (`llm.reply_spec.ReplySpec`: the tools and images it may name); a
        backend that constrains its decoding uses it for that one reply, the others ignore it."""

    def take_notice(self) -> str | None:
        """A line the backend kept for the session (a server refused an optional feature), given once."""
        return None

    def bind_runtime(self, models: Callable[[], Any], cancelled: Callable[[], bool] | None = None) -> None:
        """Share the session's model runtime and cancel flag (a backend that runs in-process uses them)."""

    def list_models(self) -> list[str]:
        """The models the server offers; raise LLMError when it cannot be asked."""
        raise LLMError(f"{self.name} cannot list models")


def cut_at_cap(llm: LLM) -> bool:
    """True when the backend says its last reply ended at the token cap (`max_tokens`), not where the model stopped."""
    return llm.last_finish == "length"


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
