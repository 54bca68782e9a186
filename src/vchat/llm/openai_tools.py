"""Native tool calling on an OpenAI-compatible server: `tools` in the request, `tool_calls` back, streamed or whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vchat.llm.base import NativeCall, ToolCalls
from vchat.llm.openai_call import Call, ReplyInfo
from vchat.llm.openai_errors import Wording
from vchat.llm.openai_text import fix_surrogates, join_halves, server_message

# A refusal of `tools` (vLLM without --enable-auto-tool-choice, Ollama models without tool support,
# llama.cpp without --jinja) comes back as a 4xx/5xx whose message talks about tools or functions.
_REFUSAL_STATUSES = (400, 404, 405, 422, 500, 501)
_REFUSAL_WORDS = ("tool", "function")


def refusal(openai: Any, exc: Exception) -> str | None:
    """The server's reason when `exc` is a refusal of native tool calling, else None (`openai`: the module)."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in _REFUSAL_STATUSES:
        return None
    message = server_message(exc)
    return message if any(word in message.lower() for word in _REFUSAL_WORDS) else None


def read_reply(
    words: Wording, info: ReplyInfo, response: Any, streamed: bool, call: Call | None = None
) -> Iterator[str | ToolCalls]:
    """The reply to a request with `tools`, streamed or whole: its text, then one ToolCalls if tools were called."""
    if streamed:
        yield from _stream(words, info, response, call)
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
        raise words.garbage() from None
    info.note_usage(response)
    info.finish = str(finish) if finish else None
    if len(text) + sum(len(c.arguments) for c in calls) > words.max_reply_chars:
        raise words.runaway(len(text))
    if text:
        yield fix_surrogates(str(text))
    if calls:
        yield ToolCalls(calls)


def _stream(words: Wording, info: ReplyInfo, stream: Any, call: Call | None = None) -> Iterator[str | ToolCalls]:
    """Text deltas as they come; tool-call deltas (id and name first, arguments in pieces) joined by index."""
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
            if received > words.max_reply_chars:
                raise words.runaway(received)
            info.note_usage(chunk)
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
        error = words.mid_reply(exc, received)
        if error is exc:
            raise
        raise error from None
    finally:
        stream.close()
    if finish is None:
        raise words.cut_early(received)
    info.finish = finish
    if held:
        yield fix_surrogates(held)
    if slots:
        yield ToolCalls(
            tuple(
                NativeCall(slot["id"] or f"call_{index}", slot["name"], slot["arguments"])
                for index, slot in sorted(slots.items())
            )
        )
