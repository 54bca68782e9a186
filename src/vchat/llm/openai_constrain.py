"""Constrained replies from OpenAI-compatible servers (`constrain = "on"`): the same ReAct grammar the built-in
planner decodes under (llm/grammar.py, llguidance's Lark dialect) sent as the server's structured-output option.

vLLM takes it as `structured_outputs: {"grammar": …}` (its guidance backend is llguidance, which reads this Lark);
a server that refuses the option (a 400/422 naming it) gets requests without it from then on, and the session says
so once. `constrain = "auto"` leaves servers alone: what a server accepts varies too much to send it unasked.
"""

from __future__ import annotations

from typing import Any

OPTION = "structured_outputs"  # also the name kept in the backend's refused parameters once refused
_WORDS = ("structured_outputs", "structured output", "grammar", "guided", "extra", "unrecognized", "not permitted")


def add_option(backend: Any, kwargs: dict[str, Any], tools: Any) -> None:
    """Put the grammar in a ReAct request's `extra_body` when the backend is set to send it and may."""
    spec, mode = backend._reply_spec, backend.constrain
    if tools is not None or spec is None or mode != "on" or OPTION in backend._dropped:
        return
    from vchat.llm.grammar import react_grammar

    kwargs["extra_body"] = {OPTION: {"grammar": react_grammar(spec, backend.max_tokens or 1024)}}


def take_notice(backend: Any) -> str | None:
    """The notice kept for the session, once (a method of the backend: wrappers such as the bench's forward it)."""
    notice, backend.pending_notice = backend.pending_notice, None
    return notice if isinstance(notice, str) else None


def refused(backend: Any, exc: Exception, kwargs: dict[str, Any]) -> bool:
    """True when `exc` refuses the option: it is not sent again and the session gets one notice."""
    from vchat.llm.openai_text import server_message

    status = getattr(exc, "status_code", None)
    if "extra_body" not in kwargs or status not in (400, 422) or not isinstance(exc, backend._openai.APIStatusError):
        return False
    message = server_message(exc).lower()
    if not any(word in message for word in _WORDS):
        return False
    backend._dropped.add(OPTION)
    backend.pending_notice = (
        f"{backend._where}: the server does not take a grammar ({OPTION}): replies are not constrained"
    )
    return True
