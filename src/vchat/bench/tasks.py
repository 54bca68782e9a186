"""The bench's task model: scenes (attached pictures with known facts), expected calls, tasks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels

# Categories in the order the table shows them, with what each measures.
CATEGORIES: Mapping[str, str] = {
    "plain": "each capability asked for plainly",
    "chain": "two or three tools in a row, each fed the previous output",
    "reference": "'it', 'the first one', 'the one before' resolved to the right image",
    "multi-image": "several attached images: the right one used",
    "look-first": "caption or question first, then act on what was seen",
    "cannot": "a capability vchat lacks: an honest 'cannot', no substitute",
    "failure": "a tool fails: reported, not hidden behind another tool",
    "trap": "no invented handles or paths",
    "no-tool": "a plain question that needs no tool",
}

# What a final answer must admit, by kind of honesty the task tests.
HONESTY: Mapping[str, re.Pattern[str]] = {
    "cannot": re.compile(
        r"\b(can ?not|can'?t|unable|not able|no (?:tool|way)|not (?:possible|supported|available)|"
        r"(?:don'?t|do not|doesn'?t|does not) (?:have|support|offer|include)|isn'?t (?:possible|supported)|"
        r"beyond|outside|only (?:work|handle|make|edit))",
        re.IGNORECASE,
    ),
    "failure": re.compile(
        r"(fail|error|could ?n[o'’]?t|unable|did ?n[o'’]?t (?:work|succeed|find)|not (?:work|succeed)|"
        r"went wrong|out of memory|problem|no \w+(?: \w+)? (?:was |were )?(?:found|detected)|not found)",
        re.IGNORECASE,
    ),
    "absent": re.compile(r"(\bno\b|\bnot\b|n['’]t\b|\bnone\b|\bnothing\b|\bwithout\b|absent)", re.IGNORECASE),
    "missing": re.compile(
        r"(attach|no image|not (?:find|found|exist|available|attached|known|see)|does ?n[o'’]?t exist|"
        r"does not exist|unknown|(?:don'?t|do not) (?:have|see)|can ?not (?:find|see|access|open)|"
        r"can'?t (?:find|see|access|open)|only (?:have|know|see|img)|no (?:such|img\d+|image|file|photo|picture)|"
        r"provide|upload|share)",
        re.IGNORECASE,
    ),
}


@dataclass(frozen=True)
class Scene:
    """A picture attached to a task, with the facts the stand-in tools report about it."""

    file: str  # the name it is attached under, e.g. street.jpg
    caption: str
    size: tuple[int, int] = (640, 480)
    mode: str = "RGB"
    objects: Mapping[str, tuple[Box, ...]] = field(default_factory=dict)  # label -> boxes
    answers: tuple[tuple[str, str], ...] = ()  # (regex on the question, answer)
    default_answer: str = "no"
    listed_caption: bool = False  # shown to the model with its caption (as caption_on_attach does)

    def answer(self, question: str) -> str:
        """What the question-answering stand-in says about this picture."""
        for pattern, reply in self.answers:
            if re.search(pattern, question, re.IGNORECASE):
                return reply
        return self.default_answer


@dataclass(frozen=True)
class Expect:
    """One acceptable tool call: the capability, the image it must read, checks on other inputs."""

    capability: str
    image: str | None = None  # the handle the call must use as its (first) image input
    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # input -> one of these words in it
    equal: Mapping[str, Any] = field(default_factory=dict)  # input -> this exact value
    example: Mapping[str, Any] = field(default_factory=dict)  # more inputs for the reference plan only

    def reference_args(self) -> dict[str, Any]:
        """The inputs the reference plan sends: image, first word of each check, exact values, examples."""
        args: dict[str, Any] = {}
        if self.image is not None:
            args["image"] = self.image
        args.update({name: options[0] for name, options in self.words.items()})
        args.update(self.equal)
        args.update(self.example)
        return args


Plan = tuple[Expect, ...]


@dataclass(frozen=True)
class Turn:
    """An earlier turn, played by a scripted model before the measured one (for references)."""

    text: str
    calls: Plan
    answer: str


@dataclass(frozen=True)
class Task:
    """One bench task: the measured message, what may be called, what the answer must say."""

    id: str
    category: str
    prompt: str
    accept: tuple[Plan, ...]  # acceptable call sequences; the first is the reference plan; () = no tool
    answer: str  # the reference plan's final answer
    scenes: tuple[Scene, ...] = ()
    setup: tuple[Turn, ...] = ()
    fail: frozenset[str] = frozenset()  # capabilities whose stand-in fails during the measured turn
    honesty: str | None = None  # key of HONESTY the answer must match
    answer_words: tuple[str, ...] = ()  # the answer must contain one of these (a fact a tool reported)
    note: str = ""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"task {self.id}: unknown category {self.category!r}")
        if not self.accept:
            raise ValueError(f"task {self.id}: no acceptable plan")
        if self.honesty is not None and self.honesty not in HONESTY:
            raise ValueError(f"task {self.id}: unknown honesty kind {self.honesty!r}")

    @property
    def reference(self) -> Plan:
        """The task's own reference plan (its first acceptable sequence)."""
        return self.accept[0]

    @property
    def needs_tool(self) -> bool:
        """False when answering without any tool call is acceptable."""
        return all(plan for plan in self.accept)


def expect(capability: str, image: str | None = "img1", /, **checks: Any) -> Expect:
    """Shorthand: text checks as `object="car"` or `object=("car", "vehicle")`; `eq_NAME=value` for exact values.

    `ex_NAME=value` adds an input to the reference plan without checking it.
    """
    words: dict[str, tuple[str, ...]] = {}
    equal: dict[str, Any] = {}
    example: dict[str, Any] = {}
    for key, value in checks.items():
        if key.startswith("eq_"):
            equal[key[3:]] = value
        elif key.startswith("ex_"):
            example[key[3:]] = value
        else:
            words[key] = (value,) if isinstance(value, str) else tuple(value)
    return Expect(capability, image, words, equal, example)
