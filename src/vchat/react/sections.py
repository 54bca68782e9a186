"""A reply cut into sections: each keyword line (Thought, Action, Action Input, AI…) and the lines under it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vchat.react.shapes import BARE_FENCE_LINE, KEYWORD_LINE, KINDS


def keyword(line: str) -> tuple[str, str] | None:
    """(kind, rest of line) when `line` starts with a protocol keyword, else None."""
    match = KEYWORD_LINE.match(line)
    if not match:
        return None
    rest = match.group("rest").strip()
    if not match.group("colon") and (rest or not (match.group("header") or match.group("bold"))):
        return None  # a keyword needs its colon, unless it is a bare header/bold line ("### Action")
    bold = match.group("bold")
    if bold and rest.endswith(bold) and rest.count(bold) % 2 == 1:  # "**Action: x**": drop the stray closer
        rest = rest[: -len(bold)].rstrip()
    word = re.sub(r"[\s_\-\d]+", " ", match.group("kw").lower()).strip()
    if word.replace(" ", "") == "finalanswer":
        return "final", rest
    if word.startswith("action") and word.endswith("input"):
        return "input", rest
    return KINDS[word], rest


@dataclass
class Section:
    """A keyword and the lines under it; kind "text" is what the model wrote before any keyword."""

    kind: str
    lines: list[str] = field(default_factory=list)  # first line: the rest of the keyword line
    raw: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        """The section's text: its lines joined and stripped."""
        return "\n".join(self.lines).strip()


def split_sections(text: str) -> list[Section]:
    """The cleaned reply as sections, in order; keyword-looking lines inside a fenced input stay input."""
    sections = [Section("text")]
    in_fence = False
    for line in text.split("\n"):
        current = sections[-1]
        found = None if in_fence else keyword(line)
        if found is not None and not _starts_section(found[0], current.kind):
            found = None
        if found is None:
            current.lines.append(line)
            current.raw.append(line)
            if current.kind in ("input", "final") and BARE_FENCE_LINE.match(line):
                in_fence = not in_fence  # keyword-looking lines inside a fenced input are input
            continue
        kind, rest = found
        kind = "input" if kind == "bare_input" else kind
        sections.append(Section(kind, [rest], [line]))
        in_fence = False
    return sections


def _starts_section(kind: str, current: str) -> bool:
    if kind == "bare_input":  # a bare "Input:" only counts right after an Action line
        return current == "action"
    return not (current == "final" and kind == "final")  # "Answer:" inside an answer is answer text
