"""Constrained replies from OpenAI-compatible servers (`constrain = "on"`): the same ReAct grammar the built-in
planner decodes under (llm/grammar.py, llguidance's Lark dialect) sent as the server's structured-output option.

vLLM takes it as `structured_outputs: {"grammar": …}` (its guidance backend is llguidance, which reads this Lark);
a server that refuses the option (a 400/422 naming it) gets requests without it from then on, and the session says
so once. `constrain = "auto"` leaves servers alone: what a server accepts varies too much to send it unasked.
"""

from __future__ import annotations

from typing import Any

from vchat.llm.reply_spec import ReplySpec

OPTION = "structured_outputs"
_WORDS = ("structured_outputs", "structured output", "grammar", "guided", "extra", "unrecognized", "not permitted")


def option(spec: ReplySpec | None, mode: str, max_tokens: int | None, refused: bool) -> dict[str, Any] | None:
    """The request's `extra_body` for this reply, or None when it goes unconstrained."""
    if spec is None or mode != "on" or refused:
        return None
    from vchat.llm.grammar import react_grammar

    return {OPTION: {"grammar": react_grammar(spec, max_tokens or 1024)}}


def refusal(exc: Exception, sent: bool, status: int | None, message: str) -> str | None:
    """The one-line notice for a server that refused the option, or None when the error is about something else."""
    if not sent or status not in (400, 422):
        return None
    lowered = message.lower()
    if not any(word in lowered for word in _WORDS):
        return None
    return "the server does not take a grammar (structured_outputs): replies are not constrained"
