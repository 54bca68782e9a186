"""The ReAct loop: ask the model, parse, run a tool, feed back the observation; yields typed steps."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from vchat.chat import history, prompts
from vchat.chat.binding import bind_input
from vchat.chat.steps import Step, failed_step, invented_handles, run_tool
from vchat.chat.vision import Vision, windowed, with_images
from vchat.config import Protocol
from vchat.errors import LLMError, ParseError, VchatError
from vchat.llm.base import LLM, Message, cut_at_cap
from vchat.llm.reply_spec import ReplySpec
from vchat.react import FinalAnswer, ToolCall, parse_reply
from vchat.store.images import ImageRef, ImageStore
from vchat.tools.base import Tool, ToolContext, offered

STOP = ["\nObservation:"]
RECENT_IMAGES = 12  # images described in full in each user message; older ones by handle only
# An observation the model gets back is cut here: a tool error that quotes a 1 MB input must not echo it whole.
MAX_OBSERVATION_CHARS = 4000


def _thought_of(reply: str) -> str | None:
    match = re.search(r"thought\s*:\s*(.+)", reply, re.IGNORECASE)
    return match.group(1).strip() if match else None


def _for_model(text: str) -> str:
    """An observation as the model gets it: cut to MAX_OBSERVATION_CHARS, saying so."""
    if len(text) <= MAX_OBSERVATION_CHARS:
        return text
    return text[:MAX_OBSERVATION_CHARS] + f"… ({len(text) - MAX_OBSERVATION_CHARS} more chars cut)"


class Agent:
    """Drives one model over the tool set; no terminal I/O, no concrete tools imported."""

    def __init__(
        self,
        llm: LLM,
        tools: Sequence[Tool],
        ctx: ToolContext,
        store: ImageStore,
        *,
        max_steps: int = 8,
        max_format_retries: int = 2,
        on_text: Callable[[str], None] | None = None,
        protocol: Protocol = "react",
        vision: Vision | None = None,
    ) -> None:
        self.llm = llm
        # Every tool is callable by name (old capability names are aliases of the families);
        # the prompt lists only what `tools.base.offered` keeps.
        self.tools = {tool.name: tool for tool in tools}
        self.ctx = ctx
        self.store = store
        self.max_steps = max_steps
        self.max_format_retries = max_format_retries
        self.on_text = on_text
        self.last_user_content = ""
        self._last_observation = ""
        self._last_images: list[ImageRef] = []
        # The calls made this turn (an Agent lives for one turn): an identical call is not run again.
        self._calls: dict[str, int] = {}
        # Show the planner the newest images as pixels (None: by handle only).
        self.vision = vision
        # react: the text format any chat model can follow; tools: native function calling,
        # switched to react (for good) when the backend lacks it or the server refuses `tools`.
        self.protocol = protocol
        # Built once: byte-identical across turns so provider-side prompt caching applies.
        self.system_prompt = prompts.system_prompt((type(tool) for tool in offered(tools)), vision=vision is not None)

    def pixels(self, text: str, refs: Sequence[ImageRef]) -> str | list[Any]:
        """A message content with the images as pixels when vision is on (plain text otherwise)."""
        if self.vision is None or not refs:
            return text
        return with_images(text, [(ref.handle, ref.path) for ref in refs], self.vision.max_side)

    def vision_refused(self) -> Step | None:
        """After a backend turned images down: vision off for the rest of the session, said once."""
        if self.vision is None or not self.llm.vision_refused:
            return None
        self.vision = None
        return Step("notice", text=f"{self.llm.name} does not take images: vision is off for this session")

    def visible(self, messages: Sequence[Message]) -> Sequence[Message]:
        """The messages as sent: with vision, only a window of the newest images travels as pixels.

        The window moves in blocks (`vision.windowed`), so between moves every request extends
        the one before byte for byte and the provider's prefix cache keeps working.
        """
        return windowed(messages, self.vision.images) if self.vision is not None else messages

    def opening_message(self) -> Message:
        """The turn's user message as sent: its text, and with vision the newest images as pixels."""
        shown = list(self.store)[-self.vision.images :] if self.vision is not None and self.vision.images else []
        return {"role": "user", "content": self.pixels(self.last_user_content, shown)}

    def images_made(self) -> list[ImageRef]:
        """The images the latest tool call made, when the planner sees them (vision on); else none."""
        return self._last_images if self.vision is not None else []

    def _ask(self, messages: Sequence[Message]) -> str:
        messages = self.visible(messages)
        chunks: list[str] = []
        self.ctx.check_cancelled()
        # A backend that constrains its decoding gets the tools and images this reply may name.
        self.llm.expect(ReplySpec.of(self.tools.values(), [ref.handle for ref in self.store]))
        for chunk in self.llm.complete(messages, stop=STOP):
            # Ctrl-C in the REPL sets the session's cancel flag: stop reading the stream.
            self.ctx.check_cancelled()
            chunks.append(chunk)
            if self.on_text is not None:
                self.on_text(chunk)
        return "".join(chunks)

    def user_content(self, user_text: str) -> str:
        """The user's message as the model gets it: the text and the session's images."""
        note = self.store.known_list(recent=RECENT_IMAGES) if len(self.store) else None
        return prompts.user_message(user_text, note)

    def run_turn(
        self, user_text: str, history: Sequence[Message] = (), *, content: str | None = None
    ) -> Iterator[Step]:
        """Answer one user message, yielding each step; ends with a final or error step.

        `content` is the user message exactly as to send (from `user_content`, computed
        before the turn so the transcript can keep it byte for byte); default: built here.
        """
        self.last_user_content = content if content is not None else self.user_content(user_text)
        if self.protocol == "tools":
            from vchat.chat import native as agent_native

            fallback = yield from agent_native.run_native_turn(self, history)
            if fallback is None:
                return
            yield Step("notice", text=f"{fallback}; using the text (ReAct) protocol instead")
            self.protocol = "react"
        messages: list[Message] = [{"role": "system", "content": self.system_prompt}, *history, self.opening_message()]
        tool_steps = 0
        format_failures = 0
        while True:
            try:
                reply = self._ask(messages)
            except LLMError as exc:
                yield Step("error", text=str(exc), reason="llm")
                return
            refused = self.vision_refused()
            if refused is not None:
                yield refused
            notice = self.llm.take_notice()
            if notice is not None:
                yield Step("notice", text=notice)
            cut = cut_at_cap(self.llm)
            try:
                parsed: ToolCall | FinalAnswer | None = parse_reply(reply, tuple(self.tools))
            except ParseError as exc:
                parsed = None  # a reply cut at the token cap is said so below, not as a format mistake
                if not cut:
                    format_failures += 1
                    if format_failures > self.max_format_retries:
                        # One line for the user: the parser's message to the model also repeats the whole format.
                        why = str(exc).splitlines()[0].split(". ")[0].removeprefix("Could not read your reply: ")
                        text = f"the model's replies could not be read after {format_failures} tries (last: {why})"
                        yield Step("error", text=text, reply=reply, reason="unreadable")
                        return
                    yield Step("retry", text=str(exc), reply=reply)
                    messages.append({"role": "assistant", "content": reply})
                    messages.append({"role": "user", "content": prompts.format_reminder(str(exc))})
                    continue
            if cut and not isinstance(parsed, FinalAnswer):
                # A step cut at the token cap may have lost the end of its input: it is not run, the model is told.
                format_failures += 1
                cap = self.llm.max_tokens
                if format_failures > self.max_format_retries:
                    yield Step("error", text=prompts.cut_limit(cap, format_failures), reply=reply, reason="length")
                    return
                yield Step("retry", text=prompts.cut_notice(cap, answer=False), reply=reply, reason="length")
                messages.append({"role": "assistant", "content": reply})
                messages.append({"role": "user", "content": prompts.format_reminder(prompts.cut_reply(cap))})
                continue
            assert parsed is not None
            format_failures = 0
            if isinstance(parsed, FinalAnswer):
                if cut:  # the answer is shown as it is, with one line saying it may be incomplete
                    cap = self.llm.max_tokens
                    yield Step("notice", text=prompts.cut_notice(cap, answer=True), reply=reply, reason="length")
                flagged = invented_handles(parsed.text, self.store)
                yield Step("final", text=parsed.text, reply=reply, thought=_thought_of(reply), flagged=flagged)
                return
            if tool_steps >= self.max_steps:
                yield Step("error", text=prompts.step_limit(self.max_steps), reply=reply, reason="step_limit")
                return
            tool_steps += 1
            self.ctx.check_cancelled()
            step = self._call(parsed, reply)
            yield from step
            messages.append({"role": "assistant", "content": reply.strip()})
            observation = prompts.observation(_for_model(self._last_observation))
            messages.append({"role": "user", "content": self.pixels(observation, self.images_made())})

    def call_tool(self, call: ToolCall, reply: str) -> Iterator[Step]:
        """Bind and run one call (either protocol); `last_observation` holds what the model is told."""
        yield from self._call(call, reply)

    @property
    def last_observation(self) -> str:
        """The text of the latest tool result, as the model gets it."""
        return self._last_observation

    def _call(self, call: ToolCall, reply: str) -> Iterator[Step]:
        tool = self.tools.get(call.tool)
        thought = _thought_of(reply)
        self._last_images = []
        yield Step("action", tool=call.tool, input=call.input, thought=thought, reply=reply)
        raw_call = history.raw_call_text(call.tool, call.input)
        if tool is None:
            names = ", ".join(sorted(t.name for t in offered(self.tools.values())))
            text = f"unknown tool {call.tool!r}; valid tools: {names}"
            self._last_observation = text
            record = history.failed_record(raw_call, "unknown tool")
            yield failed_step(call.tool, call.input, "unknown_tool", text, record)
            return
        try:
            args = bind_input(type(tool), call.input, self.store.resolve)
        except (VchatError, ValueError, TypeError) as exc:  # whatever the model wrote, it hears why, never a crash
            text = f"bad input for {tool.name}: {exc}"
            self._last_observation = text
            record = history.failed_record(raw_call, f"bad input: {exc}")
            yield failed_step(tool.name, call.input, "bad_input", text, record)
            return
        key = _call_key(tool.name, args)
        if key in self._calls:
            # A model stuck in a loop would spend every step on it: it is told, and nothing runs.
            text = (
                f"you already called {tool.name} with exactly this input (call {self._calls[key]} of this message); "
                "its result is above. Use it, change the input, or give your answer"
            )
            self._last_observation = text
            yield failed_step(tool.name, call.input, "bad_input", text, history.failed_record(raw_call, "repeated"))
            return
        self._calls[key] = len(self._calls) + 1
        step = run_tool(tool, args, self.ctx, call.input)
        self._last_observation = step.observation or ""
        self._last_images = list(step.images)
        yield step


def _call_key(name: str, args: dict[str, Any]) -> str:
    """The same tool with the same bound inputs (images by handle) gives the same key."""
    import json

    return name + json.dumps({k: getattr(v, "handle", v) for k, v in args.items()}, sort_keys=True, default=str)
