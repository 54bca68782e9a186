"""What a turn yields: typed steps, and one tool call run into an observation step (the user's and the model's text)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vchat.chat import history, prompts
from vchat.errors import Cancelled, ToolUnavailable, VchatError
from vchat.store.images import ImageRef, ImageStore
from vchat.tools.base import Tool, ToolContext

StepKind = Literal["action", "observation", "final", "error", "retry", "notice"]
# Why a tool call made nothing: no such tool, an input that does not bind, the tool itself failed, or it
# cannot run now at all (weights missing, out of memory) and the model must not put another tool in its place.
Failure = Literal["unknown_tool", "bad_input", "failed", "blocked"]
# error steps: the backend failed, replies unreadable, the step limit, a reply cut at the token cap;
# retry and notice steps: "length" when a reply was cut at the token cap (max_tokens).
Reason = Literal["llm", "unreadable", "step_limit", "length"]

_HANDLE_IN_TEXT = re.compile(r"\bimg(\d+)\b", re.IGNORECASE)


@dataclass
class Step:
    """One thing that happened in a turn; yielded by the loop, rendered by ui, stored in the transcript.

    For an observation, `text` is what the user reads and `observation` what the model gets back (the same
    words plus the new handles and any sentence meant for the model only); `failure` says why nothing was made.
    """

    kind: StepKind
    text: str = ""
    tool: str | None = None
    input: str | None = None
    observation: str | None = None
    seconds: float = 0.0
    images: list[ImageRef] = field(default_factory=list)
    thought: str | None = None
    reply: str | None = None  # the model's raw reply that led to this step
    flagged: list[str] = field(default_factory=list)  # image names a final answer invented
    degraded: str | None = None
    reason: Reason | None = None
    record: str | None = None  # for observation steps: the compact line kept in history (`img3 = tool(img2)`)
    failure: Failure | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record for --json and the transcript."""
        return {
            "kind": self.kind,
            "text": self.text,
            "tool": self.tool,
            "input": self.input,
            "observation": self.observation,
            "seconds": round(self.seconds, 4),
            "images": [ref.handle for ref in self.images],
            "thought": self.thought,
            "reply": self.reply,
            "flagged": self.flagged,
            "degraded": self.degraded,
            "reason": self.reason,
            "record": self.record,
            "failure": self.failure,
        }


def failed_step(tool: str, raw_input: str | None, failure: Failure, text: str, record: str, **extra: Any) -> Step:
    """An observation step for a call that made nothing; the user and the model read the same `text`."""
    return Step(
        "observation", text=text, tool=tool, input=raw_input, observation=text, record=record, failure=failure, **extra
    )


def invented_handles(text: str, store: ImageStore) -> list[str]:
    """Image handles a text names that the session does not have."""
    names: list[str] = []
    for match in _HANDLE_IN_TEXT.finditer(text):
        handle = f"img{int(match.group(1))}"
        if handle not in store and handle not in names:
            names.append(handle)
    return names


def run_tool(tool: Tool, args: Mapping[str, Any], ctx: ToolContext, raw_input: str) -> Step:
    """Run one bound tool call and turn its result or failure into an observation step.

    The observation names new images by handle only (the UI shows their paths from
    `step.images`): a path costs the model ~25 tokens and is of no use to it.
    """
    started = time.perf_counter()
    call = history.call_text(tool, args)
    try:
        result = tool.run(ctx, **args)
    except (Cancelled, KeyboardInterrupt):
        raise
    except ToolUnavailable as exc:
        text = f"{tool.name} failed: {exc}"
        return Step(
            "observation",
            text=text,
            tool=tool.name,
            input=raw_input,
            observation=f"{text}; {ToolUnavailable.for_model}",
            seconds=time.perf_counter() - started,
            record=history.failed_record(call, str(exc)),
            failure="blocked",
        )
    except Exception as exc:  # a bug or an environment fault inside the tool: the model hears it
        if isinstance(exc, VchatError):
            why = str(exc)
        else:
            detail = str(exc).splitlines()[0] if str(exc) else ""
            why = f"{type(exc).__name__}{': ' + detail if detail else ''}"
        return failed_step(
            tool.name,
            raw_input,
            "failed",
            f"{tool.name} failed: {why}",
            history.failed_record(call, why),
            seconds=time.perf_counter() - started,
        )
    text = prompts.cap_tool_text(result.text.strip())
    if result.degraded:
        text += f"\n(note: {result.degraded})"
    observation = prompts.cap_tool_text(result.text.strip())
    if result.images:
        handles = ", ".join(r.handle for r in result.images)
        observation += f"\nNew image{'s' if len(result.images) > 1 else ''} {handles}."
    if result.degraded:
        observation += f"\n(note: {result.degraded})"
    return Step(
        "observation",
        text=text.strip(),
        tool=tool.name,
        input=raw_input,
        observation=observation.strip(),
        seconds=time.perf_counter() - started,
        images=list(result.images),
        degraded=result.degraded,
        record=history.made_record(call, [r.handle for r in result.images], result.text),
    )
