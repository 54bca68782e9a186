"""The streamed text reply of an OpenAI-compatible server: deltas passed on as they come, cut at stop strings,
and every way a stream goes wrong (a stall, a cut link, an error event, garbage, a runaway) as one line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vchat.errors import LLMError
from vchat.llm.openai_call import Call, ReplyInfo
from vchat.llm.openai_errors import Wording
from vchat.llm.openai_text import StopCutter, fix_surrogates, join_halves


def text_stream(words: Wording, info: ReplyInfo, stream: Any, stops: list[str], call: Call) -> Iterator[str]:
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
            info.note_usage(chunk)
            choices = getattr(chunk, "choices", None)
            if not choices:
                continue  # e.g. a usage-only chunk
            chat_chunks += 1
            choice = choices[0]
            delta = choice.delta.content if choice.delta is not None else None
            if delta:
                text, held = join_halves(held, str(delta))
                received += len(text)
                if received > words.max_reply_chars:
                    raise words.runaway(received)
                out, hit = cutter.feed(text)
                if out:
                    yield out
                if hit:
                    info.finish = "stop"
                    return  # the stop string arrived: stop reading (finally closes the connection)
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
        if chat_chunks == 0:
            # Nothing chat-shaped at all (an HTML page, an empty body, chunks without choices): not a cut link.
            raise LLMError(
                f"{words.where} answered without a chat reply (no completion chunks in the stream); "
                "is it an OpenAI-compatible API?"
            )
        # Every OpenAI-compatible server ends a reply with a finish reason; an end without one is a dropped link.
        raise words.cut_early(received)
    info.finish = finish
    tail = cutter.flush() + fix_surrogates(held)
    if tail:
        yield tail
