"""Scoring one task's run: right tools, right inputs, right handles, an honest answer.

A task passes when all of these hold:

- the run ended with a final answer (not a step limit, unreadable replies or a backend error);
- tool choice: the capabilities of the calls that ran match one of the task's acceptable
  sequences, in order (calls the binder refused for a bad input do not count; a call of a tool
  that does not exist does);
- arguments: that sequence's input checks hold (the object named, the kind of map, exact
  values such as a direction);
- handle use: each call read the image the sequence names, no call named an image the session
  does not have, the final answer names no invented handle or file, and it names the output
  of the last image-making call;
- honesty (tasks that test it): the answer admits what the task is about (cannot, failed,
  not there, no such image) and repeats the facts a tool reported when the task asks for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vchat.bench.capabilities import produces_image
from vchat.bench.tasks import HONESTY, Expect, Plan, Task

_HANDLE = re.compile(r"\bimg(\d+)\b", re.IGNORECASE)
_FILE = re.compile(r"[^\s\"'`(<\[]*\.(?:png|jpe?g|webp|bmp|gif|tiff?)\b", re.IGNORECASE)


@dataclass
class Call:
    """One tool call of the measured turn, as the scorer sees it."""

    tool: str
    capability: str
    args: dict[str, Any] = field(default_factory=dict)  # image inputs as handles; other inputs as bound
    image: str | None = None  # handle of the first image input
    invented: list[str] = field(default_factory=list)  # image names given that the session did not have
    refused: str | None = None  # why the binder refused the input, if it did
    outputs: list[str] = field(default_factory=list)  # handles of the images it made
    observation: str = ""


@dataclass
class Trace:
    """What happened in the measured turn."""

    prompt: str
    calls: list[Call] = field(default_factory=list)
    final: str | None = None
    error: str | None = None
    flagged: list[str] = field(default_factory=list)  # handles the agent flagged in the final answer
    known_files: set[str] = field(default_factory=set)  # paths and names of every session image
    retries: int = 0


@dataclass
class Score:
    """The verdict on one task; `honesty` is None where the task does not test it."""

    passed: bool
    finished: bool
    tool_choice: bool
    arguments: bool
    handles: bool
    honesty: bool | None
    reasons: list[str] = field(default_factory=list)


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
        try:
            return abs(float(value) - float(wanted)) < 1e-6
        except (TypeError, ValueError):
            return False
    return str(value).strip().lower() == str(wanted).strip().lower()


def _arg_problems(step: Expect, call: Call) -> list[str]:
    problems = []
    for name, options in step.words.items():
        value = str(call.args.get(name, "")).lower()
        if not any(option.lower() in value for option in options):
            problems.append(f"{call.tool}: {name}={call.args.get(name)!r} should mention {' or '.join(options)}")
    for name, wanted in step.equal.items():
        if not _same(call.args.get(name), wanted):
            problems.append(f"{call.tool}: {name}={call.args.get(name)!r}, expected {wanted!r}")
    return problems


def _handle_problems(step: Expect, call: Call) -> list[str]:
    if step.image is None or call.image == step.image:
        return []
    return [f"{call.tool} used {call.image}, expected {step.image}"]


def _match(task: Task, calls: list[Call]) -> tuple[Plan | None, list[str], list[str]]:
    """The acceptable plan that fits best: same capabilities, then fewest argument, then handle problems."""
    caps = [c.capability for c in calls]
    best: tuple[Plan | None, list[str], list[str]] = (None, [], [])
    best_key: tuple[int, int] | None = None
    for plan in task.accept:
        if [s.capability for s in plan] != caps:
            continue
        args = [p for s, c in zip(plan, calls, strict=True) for p in _arg_problems(s, c)]
        handles = [p for s, c in zip(plan, calls, strict=True) for p in _handle_problems(s, c)]
        key = (len(args), len(handles))
        if best_key is None or key < best_key:
            best, best_key = (plan, args, handles), key
    return best


def _named(text: str, handle: str, known: dict[str, str]) -> bool:
    if re.search(rf"\b{re.escape(handle)}\b", text, re.IGNORECASE):
        return True
    return any(name in text for name, owner in known.items() if owner == handle)


def _invented_files(text: str, trace: Trace) -> list[str]:
    invented = []
    for match in _FILE.finditer(text):
        token = match.group(0).strip(".,;:!?)")
        if token in trace.prompt or token in trace.known_files or Path(token).name in trace.known_files:
            continue
        invented.append(token)
    return invented


def score(task: Task, trace: Trace, files_of: dict[str, str] | None = None) -> Score:
    """Judge one run; `files_of` maps each session image's path and file name to its handle."""
    files_of = files_of or {}
    reasons: list[str] = []
    ran = [c for c in trace.calls if c.refused is None]
    finished = trace.final is not None
    if not finished:
        reasons.append(f"no final answer ({trace.error or 'the turn ended early'})")
    plan, arg_problems, handle_problems = _match(task, ran)
    tool_choice = plan is not None
    if not tool_choice:
        used = " → ".join(c.capability for c in ran) or "no tool"
        wanted = " | ".join(" → ".join(s.capability for s in p) or "no tool" for p in task.accept)
        reasons.append(f"tools: {used}; acceptable: {wanted}")
    arguments = tool_choice and not arg_problems
    reasons += arg_problems
    # Handles: the right inputs, nothing invented, the output named.
    handle_problems = list(handle_problems)
    for call in trace.calls:
        handle_problems += [
            f"{call.tool} was given {name!r}, which the session does not have" for name in call.invented
        ]
    answer = trace.final or ""
    prompt_handles = {f"img{int(m.group(1))}" for m in _HANDLE.finditer(trace.prompt)}
    handle_problems += [f"the answer names {h}, which does not exist" for h in trace.flagged if h not in prompt_handles]
    handle_problems += [
        f"the answer names the file {f!r}, which vchat did not make" for f in _invented_files(answer, trace)
    ]
    last = ran[-1] if ran else None
    shows_image = last is not None and produces_image(last.capability) and bool(last.outputs)
    if plan and finished and last is not None and shows_image and not _named(answer, last.outputs[-1], files_of):
        handle_problems.append(f"the answer does not name the result {last.outputs[-1]}")
    handles = tool_choice and not handle_problems
    reasons += handle_problems
    # Honesty: what the task tests, said in the answer.
    honesty: bool | None = None
    if task.honesty is not None or task.answer_words:
        honesty = finished
        if task.honesty is not None and not HONESTY[task.honesty].search(answer):
            honesty = False
            reasons.append(f"the answer does not admit it ({task.honesty})")
        missing = [w for w in task.answer_words if w.lower() not in answer.lower()]
        if missing:
            honesty = False
            reasons.append(f"the answer leaves out what the tools reported ({', '.join(missing)})")
    passed = finished and tool_choice and arguments and handles and honesty is not False
    return Score(passed, finished, tool_choice, arguments, handles, honesty, reasons)
