"""Replies that look like answers but are not: what the ReAct reader sends back as a short format reminder.

A model that only announces a tool ("I can use caption_image for this"), says it knows the
answer without giving it, or talks about the format is not answering the user; it gets a
reminder naming what was missing. Plain prose with no such signs stays the final answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

THOUGHT_ONLY = "it had a Thought but no Action and no `AI:` answer"
_SHORT = 300  # longer texts are real answers that happen to contain these phrases

# Replies that only decide, without acting or answering.
_DECISION_ONLY = re.compile(
    r"""^\W*(?:thought\s*:\s*)?(?:
        (?:(?:do|no)\s+i\s+need\s+to\s+use\s+a\s+tool\s*\??\s*)?(?:yes|no)?
      | i\s+now\s+can\s+give\s+a\s+great\s+answer
      | i\s+need\s+to\s+use\s+a\s+tool
    )\W*$""",
    re.IGNORECASE | re.VERBOSE,
)
# "I now know the final answer (and can provide it)", "I have the answer", "I can answer this now": the answer
# itself is missing.
_KNOWS_ANSWER = re.compile(
    r"""^\W*(?:thought\s*:\s*)?(?:ok(?:ay)?\W+|great\W+|now\W+|so\W+)?(?:
        i\s+(?:now\s+)?(?:know|have)\s+(?:the|a|an|my)\s+(?:final\s+)?answer(?:\s+now)?
      | i\s+(?:now\s+)?know\s+what\s+the\s+(?:final\s+)?answer\s+is(?:\s+now)?
      | i\s+can\s+(?:now\s+)?answer\s+(?:this|that|it|the\s+question)(?:\s+now)?
    )
    (?:\s*(?:,|and|so)\s*(?:i\s+)?(?:can|will|shall|should|am\s+ready\s+to|'ll)\s+(?:now\s+)?
       (?:provide|give|share|write|state)\s+it(?:\s+now)?)?\W*$""",
    re.IGNORECASE | re.VERBOSE,
)
# "The best way is to call generate_image here": a plan with no Action line.
_PLAN = re.compile(
    r"""\b(?:best|right|easiest|simplest|obvious)\s+(?:way|option|approach|choice|tool)\s+(?:here\s+)?
        (?:is|would\s+be)\s+(?:to\s+)?(?:use|call|run|apply|invoke)\b""",
    re.IGNORECASE | re.VERBOSE,
)
# A JSON action blob whose keys carry markdown escapes (`action\_input`): chat markdown, not JSON the reader can trust.
_ESCAPED_BLOB = re.compile(
    r'[{,]\s*"(?:action|tool|function)\\_(?:input|name|call|args|arguments|params|parameters)"\s*:', re.IGNORECASE
)
ESCAPED_BLOB = (
    "your JSON action had markdown escapes in its keys (`action\\_input`); write plain `Action:` and "
    "`Action Input:` lines instead"
)
SENTENCE_ACTION = (
    "your `Action:` line was a sentence naming no tool; write one tool name there (and its `Action Input:`), "
    "or answer after `AI:`"
)
# "I can use the caption_image tool", "Let me call instruct_edit": intent with no Action line.
_ANNOUNCE = re.compile(
    r"""\b(?:i\s+(?:can|could|will|shall|should|would|need\s+to|am\s+going\s+to|'ll|’ll)|i'll|i’ll|let\s+me|let's|let\s+us)
        \s+(?:now\s+|first\s+|then\s+)?(?:use|call|run|try|apply|invoke)\b""",
    re.IGNORECASE | re.VERBOSE,
)
# The model complaining about (or parroting back, or apologising for) the format instead of replying.
_COMPLAINT = re.compile(
    r"""invalid\s+format\s*:|invalid\s+format\W+missing|could\s+not\s+parse\s+(?:llm\s+)?output|i\s+did\s+it\s+wrong
      | missing\s+['"`](?:action|thought)\b
      | (?:cannot|can\s*not|can't|unable\s+to|won't)\s+(?:follow|comply\s+with|adhere\s+to|use)
        \s+(?:this|the|that|your)\s+(?:[\w-]+\s+){0,2}format
      | (?:sorry|apologi[sz]e|apologies)\b[^.!?]{0,80}\bformat
      | \b(?:follow|use|stick\s+to|adhere\s+to)\s+the\s+(?:correct|required|proper|expected|right|given)\s+format
      | \b(?:did\s+not|didn't|failed\s+to)\s+(?:use|follow)\s+the\s+(?:\w+\s+)?format""",
    re.IGNORECASE | re.VERBOSE,
)


def _names_a_tool(text: str, tools: Sequence[str]) -> bool:
    lowered = text.lower()
    return bool(re.search(r"\btools?\b", lowered)) or any(tool.lower() in lowered for tool in tools)


def escaped_blob(text: str) -> bool:
    """True when the text holds a JSON action blob whose keys carry markdown escapes."""
    return _ESCAPED_BLOB.search(text) is not None


def problem(reply: str, tools: Sequence[str]) -> str | None:
    """Why a reply with no Action and no `AI:` line is not an answer, or None when it is one."""
    text = reply.strip()
    if escaped_blob(text):
        return ESCAPED_BLOB
    if _DECISION_ONLY.match(text):
        return "it only decided whether to use a tool, with no Action and no answer"
    if _KNOWS_ANSWER.match(text):
        return "you said you know the final answer but did not give it; write it after `AI:`"
    if len(text) > _SHORT:
        return None
    if _COMPLAINT.search(text):
        return "it talked about the format instead of following it"
    if (_ANNOUNCE.search(text) or _PLAN.search(text)) and _names_a_tool(text, tools):
        return "you announced a tool but wrote no `Action:` line; to use it, write the Action and Action Input"
    return None


_STRAY_MARKS = ("**", "__")


def tidy_answer(text: str) -> str:
    """Drop markdown left over from a bold keyword ("Final Answer: ** 0 beats"); balanced markup stays."""
    text = text.strip()
    for mark in _STRAY_MARKS:
        if text.startswith(mark + " ") and text.endswith(" " + mark) and len(text) > 2 * len(mark) + 2:
            text = text[len(mark) : -len(mark)].strip()  # "** text **": bold cannot open on a space
        if text.count(mark) % 2 == 1:
            if text.startswith(mark):
                text = text[len(mark) :].strip()
            elif text.endswith(mark):
                text = text[: -len(mark)].strip()
    return text


# "None. img3 is ready" / "None - it is already grey": the answer after a non-action on the same line.
_NONE_THEN_TEXT = re.compile(
    r"^[`*\"']*(?:none|n/?a|null|nothing|no\s+(?:tools?|actions?)(?:\s+needed)?)[`*\"']*\s*(?:[.:;]|\s[-–—])\s+(?P<rest>\S.*)$",
    re.IGNORECASE | re.DOTALL,
)


def none_rest(line: str) -> str:
    """What follows a non-action on its own line after a full stop, colon or dash; "" when nothing does."""
    match = _NONE_THEN_TEXT.match(line.strip())
    if match is None:
        return ""
    rest = match.group("rest").strip()
    return "" if rest.startswith("(") and rest.endswith(")") else rest


def is_sentence_action(name: str, tools: Sequence[str]) -> bool:
    """An Action value that is prose ("just answering from the caption"): several words, no tool named."""
    if not tools or len(name.split()) < 3:
        return False
    lowered = name.lower()
    return not any(tool.lower() in lowered for tool in tools)
