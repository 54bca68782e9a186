"""A failed request to an OpenAI-compatible server as one actionable line: timeouts with the real wait, an
unreachable host, a rejected key, a missing model (with what the server has), rate limits, server errors."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from vchat.errors import LLMError
from vchat.llm.openai_text import server_message

if TYPE_CHECKING:
    from vchat.llm.openai_backend import OpenAIChat

_MAX_LISTED_MODELS = 10  # how many model names a "model not found" message lists


def translate(chat: OpenAIChat, exc: Exception, elapsed: float | None = None, attempts: int = 1) -> LLMError:
    """Map a client exception (after `attempts` tries) to a one-line, actionable LLMError."""
    oa = chat._openai
    where = chat._where
    retries = max(0, attempts - 1)
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, oa.APITimeoutError):
        # A timeout is retried: say how long the user really waited, not one attempt's timeout.
        if retries and elapsed is not None:
            waited = f"{elapsed:.0f}s ({attempts} attempts of up to {chat.timeout:g}s each)"
        else:
            waited = f"{chat.timeout:g}s"
        return LLMError(
            f"{where} did not answer within {waited} (timed out; raise `timeout` in the config or VCHAT_TIMEOUT)"
        )
    if isinstance(exc, oa.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        if type(cause).__name__ == "ConnectError":
            return LLMError(f"cannot reach {where} (is the server running?)")
        return LLMError(f"lost the connection to {where} before the reply arrived ({chat._cause(exc)})")
    if isinstance(exc, oa.APIStatusError):
        status = exc.status_code
        message = server_message(exc)
        if isinstance(exc, oa.AuthenticationError):
            # The server's own text is left out: OpenAI's echoes part of the key.
            return LLMError(f"the server at {where} rejected the API key (check OPENAI_API_KEY)")
        if isinstance(exc, oa.NotFoundError):
            return _not_found(chat, exc, message)
        if isinstance(exc, oa.RateLimitError):
            if getattr(exc, "code", None) == "insufficient_quota" or "quota" in message.lower():
                return LLMError(chat._clean(f"{where}: quota exceeded (HTTP 429): {message}"))
            return LLMError(
                f"{where} is rate-limiting requests (HTTP 429, still after {retries} retries); "
                "wait a moment and try again"
            )
        if isinstance(exc, oa.PermissionDeniedError):
            return LLMError(chat._clean(f"the server at {where} refused access (HTTP 403): {message}"))
        if status >= 500:
            return LLMError(chat._clean(f"{where} failed with HTTP {status} (after {retries} retries): {message}"))
        return LLMError(chat._clean(f"{where} rejected the request (HTTP {status}): {message}"))
    if isinstance(exc, ValueError):  # JSONDecodeError: the body was not JSON
        return chat._garbage()
    return LLMError(chat._clean(f"{where}: {type(exc).__name__}: {exc}"))


def _not_found(chat: OpenAIChat, exc: Any, message: str) -> LLMError:
    """Tell a missing model (listing what the server has) from a wrong base URL."""
    try:
        available: list[str] | None = chat._fetch_models()
    except Exception:
        available = None  # the listing is a courtesy; the 404 is what gets reported
    about_model = getattr(exc, "code", None) == "model_not_found" or "model" in message.lower()
    if not about_model and (available is None or chat.model in available):
        return LLMError(
            f"{chat._where} has no chat completions endpoint (HTTP 404); check the base URL (it usually ends in /v1)"
        )
    text = f"model '{chat.model}' not found on {chat._where}"
    if available:
        # Close spellings first (llama3.1 vs llama3.1:8b), then the server's own order.
        close = difflib.get_close_matches(chat.model, available, n=3, cutoff=0.5)
        ordered = close + [m for m in available if m not in close]
        shown = ", ".join(ordered[:_MAX_LISTED_MODELS])
        more = len(ordered) - _MAX_LISTED_MODELS
        text += f"; available: {shown}" + (f" (and {more} more)" if more > 0 else "")
    elif available == []:
        text += "; the server lists no models (pull or load one first)"
    return LLMError(chat._clean(text))
