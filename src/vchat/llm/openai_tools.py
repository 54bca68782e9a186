"""Native tool calling on an OpenAI-compatible server: `tools` in the request, `tool_calls` back, streamed or whole."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from vchat.errors import LLMError
from vchat.llm.base import Message, NativeCall, ToolCalls, text_of, wire_message

if TYPE_CHECKING:
    from vchat.llm.openai_backend import OpenAIChat, _Call

# A refusal of `tools` (vLLM without --enable-auto-tool-choice, Ollama models without tool support,
# llama.cpp without --jinja) comes back as a 4xx/5xx whose message talks about tools or functions.
_REFUSAL_STATUSES = (400, 404, 405, 422, 500, 501)
_REFUSAL_WORDS = ("tool", "function")


def refusal(chat: OpenAIChat, exc: Exception) -> str | None:
    """The server's reason when `exc` is a refusal of native tool calling, else None."""
    from vchat.llm.openai_text import server_message

    if not isinstance(exc, chat._openai.APIStatusError) or exc.status_code not in _REFUSAL_STATUSES:
        return None
    message = server_message(exc)
    return message if any(word in message.lower() for word in _REFUSAL_WORDS) else None


def complete_with_tools(
    chat: OpenAIChat,
    messages: Sequence[Message],
    tools: Sequence[dict[str, Any]],
    call: _Call | None = None,
    started: float | None = None,
) -> Iterator[str | ToolCalls]:
    """Send the conversation with `tools`; yield the text, then one ToolCalls when the model called tools.

    The request goes through the backend's `_create`, as a text-protocol one does: a refused
    optional parameter (`temperature`, `max_tokens`) is dropped and the request sent again,
    images a server turns down go as text, and retries stay within `reply_deadline`.
    """
    from vchat.llm.openai_text import fix_surrogates

    payload = [wire_message(m) for m in messages]
    if chat.vision_refused:
        payload = [{**m, "content": text_of(m)} for m in payload]  # type: ignore[arg-type]
    chat.last_usage = None
    chat.last_finish = None
    response = chat._create(payload, [], started, call, tools=tools)
    if chat.stream:
        yield from _stream(chat, response, call)
        return
    try:
        message = response.choices[0].message
        text = message.content or ""
        raw_calls = list(message.tool_calls or [])
        finish = response.choices[0].finish_reason
        calls = tuple(
            NativeCall(str(c.id or f"call_{i}"), str(c.function.name or ""), str(c.function.arguments or ""))
            for i, c in enumerate(raw_calls)
        )
    except (AttributeError, IndexError, KeyError, TypeError):
        raise chat._garbage() from None
    chat._note_usage(response)
    chat.last_finish = str(finish) if finish else None
    if len(text) + sum(len(c.arguments) for c in calls) > chat.max_reply_chars:
        raise chat._runaway(len(text))
    if text:
        yield fix_surrogates(str(text))
    if calls:
        yield ToolCalls(calls)


def _stream(chat: OpenAIChat, stream: Any, call: _Call | None = None) -> Iterator[str | ToolCalls]:
    """Text deltas as they come; tool-call deltas (id and name first, arguments in pieces) joined by index."""
    from vchat.llm.openai_text import fix_surrogates, join_halves

    slots: dict[int, dict[str, str]] = {}
    received = 0
    held = ""  # a high surrogate whose low half is in the next delta
    finish: str | None = None
    if call is not None:
        call.stream = stream  # the caller hangs up on it past the deadline
    try:
        for chunk in stream:
            if call is not None and call.abandoned.is_set():
                return  # past the deadline or cancelled: hang up
            if received > chat.max_reply_chars:
                raise chat._runaway(received)
            chat._note_usage(chunk)
            choices = getattr(chunk, "choices", None)
            if not choices:
                continue
            choice = choices[0]
            delta = choice.delta
            if delta is not None and delta.content:
                received += len(delta.content)
                text, held = join_halves(held, str(delta.content))
                if text:
                    yield text
            for part in (delta.tool_calls if delta is not None else None) or []:
                slot = slots.setdefault(int(part.index or 0), {"id": "", "name": "", "arguments": ""})
                if part.id:
                    slot["id"] = str(part.id)
                function = part.function
                if function is not None:
                    slot["name"] += str(function.name or "")
                    slot["arguments"] += str(function.arguments or "")
                    received += len(function.arguments or "")
            if choice.finish_reason:
                finish = str(choice.finish_reason)
    except Exception as exc:
        from vchat.llm.openai_stream import mid_reply_error

        error = mid_reply_error(chat, exc, received)
        if error is exc:
            raise
        raise error from None
    finally:
        stream.close()
    if finish is None:
        raise LLMError(f"the reply from {chat._where} was cut after {received} chars (the stream ended early)")
    chat.last_finish = finish
    if held:
        yield fix_surrogates(held)
    if slots:
        yield ToolCalls(
            tuple(
                NativeCall(slot["id"] or f"call_{index}", slot["name"], slot["arguments"])
                for index, slot in sorted(slots.items())
            )
        )
