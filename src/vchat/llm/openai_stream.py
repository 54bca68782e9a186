"""The streamed text reply of an OpenAI-compatible server: deltas passed on as they come, cut at stop strings,
and every way a stream goes wrong (a stall, a cut link, an error event, garbage, a runaway) as one line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from vchat.errors import LLMError
from vchat.llm.openai_text import StopCutter, fix_surrogates, join_halves, server_message

if TYPE_CHECKING:
    from vchat.llm.openai_backend import OpenAIChat, _Call


def mid_reply_error(chat: OpenAIChat, exc: Exception, received: int) -> Exception:
    """The one-line LLMError for a stream that failed after `received` chars (either protocol); others unchanged."""
    oa = chat._openai
    if isinstance(exc, oa.APITimeoutError):  # before APIConnectionError, its base class
        return LLMError(
            f"{chat._where} stopped sending mid-reply: no data for {chat.timeout:g}s after {received} chars"
        )
    if isinstance(exc, oa.APIConnectionError):
        return LLMError(f"the reply from {chat._where} was cut after {received} chars ({chat._cause(exc)})")
    if isinstance(exc, oa.APIError):
        # A server that fails mid-generation sends an error event instead of the next chunk.
        return LLMError(
            chat._clean(f"{chat._where} reported an error mid-reply after {received} chars: {server_message(exc)}")
        )
    if isinstance(exc, (ValueError, TypeError, AttributeError, KeyError, IndexError)):
        return chat._garbage(received)
    return exc  # an LLMError of our own (runaway) or anything unexpected: raised unchanged


def text_stream(chat: OpenAIChat, stream: Any, stops: list[str], call: _Call) -> Iterator[str]:
    """Yield content deltas; turn a cut, a stall, a runaway or garbage into an LLMError that says how far it got."""
    cutter = StopCutter(stops)
    # A UTF-16 surrogate pair split over two chunks arrives as two lone halves: hold a high half back.
    held = ""
    received = 0
    chat_chunks = 0
    call.stream = stream
    finish: str | None = None
    try:
        for chunk in stream:
            if call.abandoned.is_set():
                return  # the caller stopped listening (deadline, Ctrl-C, stop string): hang up
            chat._note_usage(chunk)
            choices = getattr(chunk, "choices", None)
            if not choices:
                continue  # e.g. a usage-only chunk
            chat_chunks += 1
            choice = choices[0]
            delta = choice.delta.content if choice.delta is not None else None
            if delta:
                text, held = join_halves(held, str(delta))
                received += len(text)
                if received > chat.max_reply_chars:
                    raise chat._runaway(received)
                out, hit = cutter.feed(text)
                if out:
                    yield out
                if hit:
                    chat.last_finish = "stop"
                    return  # the stop string arrived: stop reading (finally closes the connection)
            if choice.finish_reason:
                finish = str(choice.finish_reason)
    except Exception as exc:
        error = mid_reply_error(chat, exc, received)
        if error is exc:
            raise
        raise error from None
    finally:
        stream.close()
    if finish is None:
        if chat_chunks == 0:
            # Nothing chat-shaped at all (an HTML page, an empty body, chunks without choices): not a cut link.
            raise LLMError(
                f"{chat._where} answered without a chat reply (no completion chunks in the stream); "
                "is it an OpenAI-compatible API?"
            )
        # Every OpenAI-compatible server ends a reply with a finish reason; an end without one is a dropped link.
        raise LLMError(f"the reply from {chat._where} was cut after {received} chars (the stream ended early)")
    chat.last_finish = finish
    tail = cutter.flush() + fix_surrogates(held)
    if tail:
        yield tail
