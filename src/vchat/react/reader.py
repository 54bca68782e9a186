"""What one reply means: walk its sections and decide between a tool call, an answer and a format reminder."""

from __future__ import annotations

from collections.abc import Sequence

from vchat.react import reminders
from vchat.react.actions import action_remainder, after_no_decision, read_action, record_call
from vchat.react.blobs import find_blob
from vchat.react.clean import clean
from vchat.react.inputs import unfence
from vchat.react.names import clean_name
from vchat.react.result import FinalAnswer, ToolCall, error
from vchat.react.sections import Section, split_sections


def parse_reply(text: str, tool_names: Sequence[str] = ()) -> ToolCall | FinalAnswer:
    """Read a model reply as a tool call or a final answer; raise ParseError when it has no usable meaning."""
    tools = tuple(tool_names)
    cleaned = clean(text)
    if not cleaned.strip():
        raise error("it was empty", tools)
    return _Reader(split_sections(cleaned), tools).read()


class _Reader:
    """Walks the sections of one reply and decides what it means."""

    def __init__(self, sections: list[Section], tools: tuple[str, ...]) -> None:
        self.tools = tools
        self.kept: list[Section] = []
        self.action: Section | None = None
        self.action_input: Section | None = None
        self.final: Section | None = None
        self.reply_parts: list[str] = []
        self._walk(sections)

    def _walk(self, sections: list[Section]) -> None:
        for section in sections:
            if section.kind in ("observation", "question", "stop"):
                if self.action is not None or self.final is not None:
                    break  # the model went on to imagine the tool result or a new turn
                continue  # an echoed question or a stray observation before any step
            if section.kind == "action" and self.action is not None:
                break  # only the first action runs
            self.kept.append(section)
            if section.kind == "text":
                self.reply_parts.append(section.content)
            elif section.kind == "thought":
                self.reply_parts.append(after_no_decision(section.content))
            elif section.kind == "action":
                self.action = section
            elif section.kind == "input" and self.action is not None and self.action_input is None:
                self.action_input = section
            elif section.kind == "final" and self.final is None:
                self.final = section

    def read(self) -> ToolCall | FinalAnswer:
        if self.action is not None:
            step = read_action(self.action, self.action_input, self.tools)
            if step is not None:
                return step
            self.reply_parts.append(action_remainder(self.action, self.action_input))
        else:
            recorded = record_call(self.kept, self.tools)
            if recorded is not None:
                return recorded
            blob = find_blob("\n".join(line for s in self.kept if s.kind != "final" for line in s.raw), self.tools)
            if blob is None and self.final is not None and unfence(self.final.content)[:1] in ("{", "["):
                # "Answer: {"action": ...}": a stray answer keyword before a JSON action blob.
                blob = find_blob(unfence(self.final.content), self.tools)
            if blob is not None:
                return blob
            if self.final is None and any(s.kind == "input" for s in self.kept):
                raise error("`Action Input:` came without an `Action:` line naming the tool", self.tools)
        if self.final is not None:
            answer = reminders.tidy_answer(self.final.content)
            if reminders.escaped_blob(answer):  # "Answer: {"action\_name": …}": an action, not an answer
                raise error(reminders.ESCAPED_BLOB, self.tools)
            if not answer:
                raise error("your `AI:` line was empty", self.tools)
            return FinalAnswer(answer)
        return self._plain_reply()

    def _plain_reply(self) -> FinalAnswer:
        reply = "\n".join(part for part in self.reply_parts if part).strip()
        if self.action is not None and not reply:
            name = clean_name(self.action.content.split("\n", 1)[0])
            if self.action_input is None and reminders.is_sentence_action(name, self.tools):
                raise error(reminders.SENTENCE_ACTION, self.tools)
            raise error("`Action: None` came without an answer", self.tools)
        if not reply:
            thought = " ".join(s.content for s in self.kept if s.kind == "thought")
            if thought:
                raise error(reminders.problem(thought, self.tools) or reminders.THOUGHT_ONLY, self.tools)
            raise error("it had no Action and no `AI:` answer", self.tools)
        problem = reminders.problem(reply, self.tools)
        if problem is not None:
            raise error(problem, self.tools)
        return FinalAnswer(reply)
