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


def option(spec: Any, mode: str, max_tokens: int | None, refused: bool) -> dict[str, Any] | None:
    """The `extra_body` of a ReAct request: the grammar when `constrain = "on"` and the server has not refused it."""
    if spec is None or mode != "on" or refused:
        return None
    from vchat.llm.grammar import react_grammar

    return {OPTION: {"grammar": react_grammar(spec, max_tokens or 1024)}}


def refuses(kwargs: dict[str, Any], status: int | None, message: str) -> bool:
    """True when a 400/422 answer to a request that carried the grammar complains about it."""
    lowered = message.lower()
    return "extra_body" in kwargs and status in (400, 422) and any(word in lowered for word in _WORDS)


def notice(where: str) -> str:
    """The one line the session shows after a refusal."""
    return f"{where}: the server does not take a grammar ({OPTION}): replies are not constrained"
