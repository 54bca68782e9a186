"""A failed request to an OpenAI-compatible server as one actionable line: timeouts with the real wait, an
unreachable host, a rejected key, a missing model (with what the server has), rate limits, server errors."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vchat.errors import LLMError
from vchat.llm.openai_text import server_message

_MAX_LISTED_MODELS = 10  # how many model names a "model not found" message lists
_MAX_MESSAGE_CHARS = 300
# An API key a server echoes back, whole or masked (`sk-ABCD****wxyz`, `sk-proj-…`, `gsk_ab****yz`): never shown.
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-*.]{3,}|[A-Za-z0-9_\-]{2,}\*{3,}[A-Za-z0-9_\-]{2,}")


@dataclass(frozen=True)
class Wording:
    """How the backend words its failures: where it talks to, its limits, and the key it must never show."""

    openai: Any  # the openai module (its exception classes)
    where: str  # the server as shown to the user
    model: str
    secret: str
    timeout: float
    reply_deadline: float | None
    max_tokens: int | None
    max_reply_chars: int

    def clean(self, text: str) -> str:
        """One line, bounded, and never the API key."""
        if self.secret and len(self.secret) >= 4:
            text = text.replace(self.secret, "***")
        # A server may echo the key masked (`sk-ABCD****wxyz`): that is part of it too.
        text = _KEYLIKE.sub("***", text)
        text = " ".join(text.split())
        return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 1] + "…"

    def cause(self, exc: BaseException) -> str:
        """Why a connection failed, in a few words, from the transport exception underneath."""
        cause = exc.__cause__ or exc.__context__
        if cause is None:
            return "connection lost"
        text = str(cause) or type(cause).__name__
        return self.clean(text)[:120]

    def garbage(self, received: int | None = None) -> LLMError:
        """A reply that is not OpenAI chat JSON."""
        where = f" after {received} chars" if received is not None else ""
        return LLMError(
            f"{self.where} sent a reply that is not OpenAI chat JSON{where}; is it an OpenAI-compatible API?"
        )

    def past_deadline(self, received: int) -> LLMError:
        """No whole reply within `reply_deadline`."""
        so_far = f" ({received} chars had arrived)" if received else ""
        return LLMError(
            f"no complete reply from {self.where} within {self.reply_deadline:g}s{so_far}; stopped waiting "
            "(raise `reply_deadline` in the config or VCHAT_REPLY_DEADLINE)"
        )

    def runaway(self, received: int) -> LLMError:
        """A reply longer than any max_tokens allows: the server ignored it."""
        return LLMError(
            f"the reply from {self.where} ran past {self.max_reply_chars} chars without ending "
            f"(the server ignored max_tokens={self.max_tokens}); cut"
        )

    def cut_early(self, received: int) -> LLMError:
        """A stream that ended without a finish reason: a dropped link."""
        return LLMError(f"the reply from {self.where} was cut after {received} chars (the stream ended early)")

    def mid_reply(self, exc: Exception, received: int) -> Exception:
        """The one-line LLMError for a stream that failed after `received` chars (either protocol); others unchanged."""
        oa = self.openai
        if isinstance(exc, oa.APITimeoutError):  # before APIConnectionError, its base class
            return LLMError(
                f"{self.where} stopped sending mid-reply: no data for {self.timeout:g}s after {received} chars"
            )
        if isinstance(exc, oa.APIConnectionError):
            return LLMError(f"the reply from {self.where} was cut after {received} chars ({self.cause(exc)})")
        if isinstance(exc, oa.APIError):
            # A server that fails mid-generation sends an error event instead of the next chunk.
            return LLMError(
                self.clean(f"{self.where} reported an error mid-reply after {received} chars: {server_message(exc)}")
            )
        if isinstance(exc, (ValueError, TypeError, AttributeError, KeyError, IndexError)):
            return self.garbage(received)
        return exc  # an LLMError of our own (runaway) or anything unexpected: raised unchanged


def translate(
    words: Wording,
    exc: Exception,
    elapsed: float | None = None,
    attempts: int = 1,
    list_models: Callable[[], list[str]] | None = None,
) -> LLMError:
    """Map a client exception (after `attempts` tries) to a one-line, actionable LLMError.

    `list_models` asks the server what it has, for a "model not found" that names the close ones.
    """
    oa = words.openai
    where = words.where
    retries = max(0, attempts - 1)
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, oa.APITimeoutError):
        # A timeout is retried: say how long the user really waited, not one attempt's timeout.
        if retries and elapsed is not None:
            waited = f"{elapsed:.0f}s ({attempts} attempts of up to {words.timeout:g}s each)"
        else:
            waited = f"{words.timeout:g}s"
        return LLMError(
            f"{where} did not answer within {waited} (timed out; raise `timeout` in the config or VCHAT_TIMEOUT)"
        )
    if isinstance(exc, oa.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        if type(cause).__name__ == "ConnectError":
            return LLMError(f"cannot reach {where} (is the server running?)")
        return LLMError(f"lost the connection to {where} before the reply arrived ({words.cause(exc)})")
    if isinstance(exc, oa.APIStatusError):
        status = exc.status_code
        message = server_message(exc)
        if isinstance(exc, oa.AuthenticationError):
            # The server's own text is left out: OpenAI's echoes part of the key.
            return LLMError(f"the server at {where} rejected the API key (check OPENAI_API_KEY)")
        if isinstance(exc, oa.NotFoundError):
            return _not_found(words, exc, message, list_models)
        if isinstance(exc, oa.RateLimitError):
            if getattr(exc, "code", None) == "insufficient_quota" or "quota" in message.lower():
                return LLMError(words.clean(f"{where}: quota exceeded (HTTP 429): {message}"))
            return LLMError(
                f"{where} is rate-limiting requests (HTTP 429, still after {retries} retries); "
                "wait a moment and try again"
            )
        if isinstance(exc, oa.PermissionDeniedError):
            return LLMError(words.clean(f"the server at {where} refused access (HTTP 403): {message}"))
        if status >= 500:
            return LLMError(words.clean(f"{where} failed with HTTP {status} (after {retries} retries): {message}"))
        return LLMError(words.clean(f"{where} rejected the request (HTTP {status}): {message}"))
    if isinstance(exc, ValueError):  # JSONDecodeError: the body was not JSON
        return words.garbage()
    return LLMError(words.clean(f"{where}: {type(exc).__name__}: {exc}"))


def _not_found(words: Wording, exc: Any, message: str, list_models: Callable[[], list[str]] | None) -> LLMError:
    """Tell a missing model (listing what the server has) from a wrong base URL."""
    try:
        available: list[str] | None = list_models() if list_models is not None else None
    except Exception:
        available = None  # the listing is a courtesy; the 404 is what gets reported
    about_model = getattr(exc, "code", None) == "model_not_found" or "model" in message.lower()
    if not about_model and (available is None or words.model in available):
        return LLMError(
            f"{words.where} has no chat completions endpoint (HTTP 404); check the base URL (it usually ends in /v1)"
        )
    text = f"model '{words.model}' not found on {words.where}"
    if available:
        # Close spellings first (llama3.1 vs llama3.1:8b), then the server's own order.
        close = difflib.get_close_matches(words.model, available, n=3, cutoff=0.5)
        ordered = close + [m for m in available if m not in close]
        shown = ", ".join(ordered[:_MAX_LISTED_MODELS])
        more = len(ordered) - _MAX_LISTED_MODELS
        text += f"; available: {shown}" + (f" (and {more} more)" if more > 0 else "")
    elif available == []:
        text += "; the server lists no models (pull or load one first)"
    return LLMError(words.clean(text))
