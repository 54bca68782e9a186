"""The native tool-calling loop (`protocol = "tools"`): tools as JSON-schema functions, results as `tool` messages."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, Protocol

from vchat.chat import prompts
from vchat.chat.steps import Step, invented_handles
from vchat.chat.vision import Vision
from vchat.errors import LLMError, ToolsUnsupported
from vchat.llm.base import LLM, Message, NativeCall, ToolCalls, cut_at_cap
from vchat.llm.reply_spec import ReplySpec
from vchat.react import ToolCall
from vchat.store.images import ImageRef, ImageStore
from vchat.tools.base import Tool, ToolContext, offered
from vchat.tools.schema import function_spec

EMPTY_REPLY = "Your reply was empty. Call a tool, or answer the user in plain text."
# With vision, the images the tools made go to the model in a user message after the tool results
# (OpenAI-compatible servers take only text in `tool` messages).
NEW_IMAGES = "Images the tools just made:"


class Agent(Protocol):
    """What the native loop needs of the agent (vchat.agent.Agent): its model, tools, images and one call path."""

    llm: LLM
    ctx: ToolContext
    store: ImageStore
    vision: Vision | None
    max_steps: int
    max_format_retries: int
    on_text: Callable[[str], None] | None

    @property
    def tools(self) -> Mapping[str, Tool]:
        """Every callable tool by name."""
        ...

    @property
    def last_observation(self) -> str:
        """The text of the latest tool result, as the model gets it."""
        ...

    def visible(self, messages: Sequence[Message]) -> Sequence[Message]:
        """The messages as sent (with vision, a window of images as pixels)."""
        ...

    def opening_message(self) -> Message:
        """The turn's user message as sent."""
        ...

    def pixels(self, text: str, refs: Sequence[ImageRef]) -> str | list[Any]:
        """A message content with the images as pixels when vision is on."""
        ...

    def vision_refused(self) -> Step | None:
        """A notice step once the backend turned images down."""
        ...

    def images_made(self) -> list[ImageRef]:
        """The images the latest call made, when the planner sees them."""
        ...

    def call_tool(self, call: ToolCall, reply: str) -> Iterator[Step]:
        """Bind and run one call, yielding its action and observation steps."""
        ...


def tool_specs(agent: Agent) -> list[dict[str, Any]]:
    """The offered tools as OpenAI function specs, sorted by name (stable bytes for caching)."""
    return [function_spec(type(tool)) for tool in sorted(offered(agent.tools.values()), key=lambda t: t.name)]


def _ask(agent: Agent, messages: Sequence[Message], specs: Sequence[dict[str, Any]]) -> tuple[str, ToolCalls | None]:
    text: list[str] = []
    calls: ToolCalls | None = None
    agent.ctx.check_cancelled()
    # A backend that constrains its decoding gets the tools and images this reply may name.
    agent.llm.expect(ReplySpec.of(agent.tools.values(), [ref.handle for ref in agent.store]))
    for item in agent.llm.complete_with_tools(agent.visible(messages), specs):
        agent.ctx.check_cancelled()
        if isinstance(item, ToolCalls):
            calls = item
            continue
        text.append(item)
        if agent.on_text is not None:
            agent.on_text(item)
    return "".join(text), calls


def _wire_call(call: NativeCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def run_native_turn(agent: Agent, history: Sequence[Message]) -> Generator[Step, None, str | None]:
    """Run the turn with native tool calls; returns None when done, or why to fall back to ReAct.

    Parallel calls in one reply run in the order given, each answered by its own `tool`
    message. A refusal of `tools` (or a backend without them) is only a fallback on the
    turn's first request, before any tool has run.
    """
    if not agent.llm.supports_tools:
        return f"{agent.llm.name} has no native tool calling"
    specs = tool_specs(agent)
    messages: list[Message] = [
        {"role": "system", "content": prompts.tools_system_prompt(vision=agent.vision is not None)},
        *history,
        agent.opening_message(),
    ]
    tool_steps = 0
    retries = 0  # empty replies and replies cut at the token cap, bounded like unreadable ReAct replies
    first = True
    cap = agent.llm.max_tokens
    while True:
        try:
            text, calls = _ask(agent, messages, specs)
        except ToolsUnsupported as exc:
            if first:
                return str(exc)
            yield Step("error", text=str(exc), reason="llm")
            return None
        except LLMError as exc:
            yield Step("error", text=str(exc), reason="llm")
            return None
        first = False
        refused = agent.vision_refused()
        if refused is not None:
            yield refused
        cut = cut_at_cap(agent.llm)
        answer = text.strip()
        if calls is None and answer:
            if cut:  # the answer is shown as it is, with one line saying it may be incomplete
                yield Step("notice", text=prompts.cut_notice(cap, answer=True), reply=text, reason="length")
            yield Step("final", text=answer, reply=text, flagged=invented_handles(answer, agent.store))
            return None
        if calls is None or cut:
            # An empty reply, or calls cut at the token cap (their arguments may have lost their end): none run.
            retries += 1
            if retries > agent.max_format_retries:
                why = prompts.cut_limit(cap, retries) if cut else "the model's replies were empty"
                yield Step("error", text=why, reply=text, reason="length" if cut else "unreadable")
                return None
            shown = prompts.cut_notice(cap, answer=False) if cut else EMPTY_REPLY
            yield Step("retry", text=shown, reply=text, reason="length" if cut else None)
            messages.append({"role": "assistant", "content": text})
            messages.append({"role": "user", "content": prompts.cut_reply(cap, native=True) if cut else EMPTY_REPLY})
            continue
        if tool_steps >= agent.max_steps:
            yield Step("error", text=prompts.step_limit(agent.max_steps), reply=text, reason="step_limit")
            return None
        messages.append({"role": "assistant", "content": text, "tool_calls": [_wire_call(c) for c in calls.calls]})
        made = yield from _run_calls(agent, calls, text, messages, agent.max_steps - tool_steps)
        if made:
            messages.append({"role": "user", "content": agent.pixels(NEW_IMAGES, made)})
        tool_steps += min(len(calls.calls), agent.max_steps - tool_steps)


def _run_calls(
    agent: Agent, calls: ToolCalls, text: str, messages: list[Message], room: int
) -> Generator[Step, None, list[ImageRef]]:
    """Run the calls in order, at most `room` of them; every call gets its `tool` message (servers require it).

    Returns the images they made that the planner is to see (vision on), in order.
    """
    made: list[ImageRef] = []
    for index, call in enumerate(calls.calls):
        if index >= room:
            result = f"not run: the limit of {agent.max_steps} tool steps was reached"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
            continue
        agent.ctx.check_cancelled()
        arguments = call.arguments.strip() or "{}"
        yield from agent.call_tool(ToolCall(call.name, arguments), text or f"{call.name}({arguments})")
        messages.append({"role": "tool", "tool_call_id": call.id, "content": agent.last_observation})
        made += agent.images_made()
    return made
