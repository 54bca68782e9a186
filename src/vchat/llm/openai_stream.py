"""The streamed text reply of an OpenAI-compatible server: deltas passed on as they come, cut at stop strings,
and every way a stream goes wrong (a stall, a cut link, an error event, garbage, a runaway) as one line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from vchat.errors import LLMError
from vchat.llm.openai_text import StopCutter, fix_surrogates, join_halves, server_message

if TYPE_CHECKING:
    from vchat.llm.openai_backend import OpenAIChat, _Call


def text_stream(chat: OpenAIChat, stream: Any, stops: list[str], call: _Call) -> Iterator[str]:
    """Yield content deltas; turn a cut, a stall, a runaway or garbage into an LLMError that says how far it got."""
    oa = chat._openai
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
    except LLMError:
        raise
    except oa.APITimeoutError:
        raise LLMError(
            f"{chat._where} stopped sending mid-reply: no data for {chat.timeout:g}s after {received} chars"
        ) from None
    except oa.APIConnectionError as exc:
        raise LLMError(f"the reply from {chat._where} was cut after {received} chars ({chat._cause(exc)})") from None
    except oa.APIError as exc:
        # A server that fails mid-generation sends an error event instead of the next chunk.
        raise LLMError(
            chat._clean(f"{chat._where} reported an error mid-reply after {received} chars: {server_message(exc)}")
        ) from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        raise chat._garbage(received) from None
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
