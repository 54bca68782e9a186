"""Whether a reply is in the exact ReAct shape the prompt teaches (what constrained decoding guarantees), as
opposed to one the lenient parser can still read (odd case, bold keywords, bare prose taken as the answer)."""

from __future__ import annotations

import re

_STRICT = re.compile(
    r"Thought: [^\n]+\n(?:Action: [A-Za-z_][A-Za-z0-9_]*\nAction Input: \{[^\n]*\}|AI: \S.*)", re.DOTALL
)


def well_formed(reply: str) -> bool:
    """True for `Thought: …` followed by an `Action:` with a JSON object input, or by `AI: ` and an answer."""
    return _STRICT.fullmatch(reply.strip()) is not None
