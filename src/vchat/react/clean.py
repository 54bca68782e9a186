"""What surrounds a reply, removed before it is read: template tokens, reasoning blocks, an outer fence."""

from __future__ import annotations

import re

from vchat.react.sections import keyword
from vchat.react.shapes import (
    ACTION_NAME_LINE,
    BARE_FENCE_LINE,
    DECISION_TAIL,
    END_OF_TURN,
    INLINE_INPUT,
    INLINE_KEYWORD,
    ROLE_HEADER,
    TEMPLATE_TOKEN,
    THINK_BLOCK,
    THINK_CLOSE,
    THINK_OPEN,
    THOUGHT_OR_ACTION_LINE,
    WHOLE_FENCE,
)


def clean(text: str) -> str:
    """Drop template tokens, reasoning blocks and an outer fence; normalise line breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _strip_template_tokens(text)
    text = _strip_thinking(text)
    text = _unwrap_whole_fence(text)
    text = DECISION_TAIL.sub(lambda m: m.group(1) + "\n", text)
    return "\n".join(_split_inline_keywords(line) for line in text.split("\n"))


def _strip_template_tokens(text: str) -> str:
    for match in END_OF_TURN.finditer(text):
        before = text[: match.start()]
        if TEMPLATE_TOKEN.sub("", ROLE_HEADER.sub("", before)).strip():
            text = before
            break
    return TEMPLATE_TOKEN.sub("", ROLE_HEADER.sub("", text))


def _strip_thinking(text: str) -> str:
    removed: list[str] = []

    def drop(match: re.Match[str]) -> str:
        removed.append(match.group(2))
        return ""

    text = THINK_BLOCK.sub(drop, text)
    closers = list(THINK_CLOSE.finditer(text))
    if closers:  # a lone </think>: the template opened the block, so all before it is thinking
        removed.append(text[: closers[-1].start()])
        text = text[closers[-1].end() :]
    opener = THINK_OPEN.search(text)
    if opener:  # an unclosed <think>: the model ran out of tokens or never closed it
        removed.append(text[opener.end() :])
        text = text[: opener.start()]
    if not text.strip():
        # Some models put the whole ReAct step inside the thinking block: recover it from there.
        for block in removed:
            start = _first_step_line(block)
            if start is not None:
                return block[start:]
    return text


def _first_step_line(block: str) -> int | None:
    """Offset of the first keyword line of a block that holds an action or an answer, else None."""
    offset, first, has_step = 0, None, False
    for line in block.split("\n"):
        found = keyword(line)
        if found is not None:
            first = offset if first is None else first
            has_step = has_step or found[0] in ("action", "final")
        offset += len(line) + 1
    return first if has_step else None


def _unwrap_whole_fence(text: str) -> str:
    match = WHOLE_FENCE.match(text)
    if match and any(keyword(line) for line in match.group(1).split("\n")):
        return match.group(1)
    lines = text.strip("\n").split("\n")
    if len(lines) > 1 and BARE_FENCE_LINE.match(lines[0]) and keyword(lines[1]):
        lines = lines[1:-1] if BARE_FENCE_LINE.match(lines[-1]) else lines[1:]
        return "\n".join(lines)
    return text


def _split_inline_keywords(line: str) -> str:
    if ACTION_NAME_LINE.match(line):
        line = INLINE_INPUT.sub("\n", line, count=1)
    if THOUGHT_OR_ACTION_LINE.match(line):
        return "\n".join(INLINE_KEYWORD.sub("\n", part) for part in line.split("\n"))
    return line
