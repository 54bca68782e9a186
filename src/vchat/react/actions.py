"""An Action section (or a history-record-shaped line) turned into the step it asks for."""

from __future__ import annotations

import re

from vchat.react import reminders
from vchat.react.blobs import answer_text, find_blob
from vchat.react.inputs import args_to_input, clean_input, unfence
from vchat.react.names import clean_name, exact_tool, match_tool, norm
from vchat.react.result import FinalAnswer, ToolCall
from vchat.react.sections import Section
from vchat.react.shapes import ANSWER_ACTIONS, CALL, CALL_MAX_LEN, DECISION, NONE_ACTION, RECORD_LINE


def read_action(action: Section, action_input: Section | None, tools: tuple[str, ...]) -> ToolCall | FinalAnswer | None:
    """The step an action section asks for; None for `Action: None` and its kin."""
    value = action.content
    if unfence(value).lstrip().startswith(("{", "[")):
        blob = find_blob(unfence(value), tools, anywhere=True)
        if blob is not None:
            return blob
    name_line = value.split("\n", 1)[0].strip() if value else ""
    given = clean_input(action_input.content) if action_input is not None else ""
    bare = clean_name(name_line)
    if not bare or (NONE_ACTION.match(bare) and exact_tool(bare, tools) is None):
        return None
    call = CALL.match(name_line.replace("\\_", "_")) if len(name_line) <= CALL_MAX_LEN else None
    if call:
        step = _call_step(call, given, tools)
        if step is not None:
            return step
    if not given and reminders.is_sentence_action(bare, tools):
        return None  # "(No action needed, just calculation)": prose in the Action slot, not a tool
    return _step(bare, given, tools)


def record_call(sections: list[Section], tools: tuple[str, ...]) -> ToolCall | None:
    """The first history-record-shaped line of a known tool, before any answer, as the call it stands for."""
    for section in sections:
        if section.kind not in ("text", "thought"):
            continue
        for line in section.lines:
            match = RECORD_LINE.match(line) if len(line) <= CALL_MAX_LEN else None
            call = CALL.match(match.group("call")) if match else None
            if call is None:
                continue
            name = exact_tool(call.group("name"), tools)
            if name is not None:
                args = call.group("paren") if call.group("paren") is not None else call.group("bracket")
                return ToolCall(name, args_to_input(args or ""))
    return None


def after_no_decision(thought: str) -> str:
    """What a Thought says after "Do I need to use a tool? No" (the answer), else ""."""
    match = DECISION.match(thought)
    if match and match.group("answer").lower() == "no":
        return thought[match.end() :].strip()
    return ""


def action_remainder(action: Section, action_input: Section | None) -> str:
    """Text written with `Action: None`: the model's answer when it gave no AI line.

    It may follow on the same line after a full stop or dash ("None. img3 is ready"), on the
    next lines, or as the `Action Input:` of the non-action.
    """
    first, _, below = action.content.partition("\n")
    parts = [reminders.none_rest(first), below.strip()]
    if action_input is not None:
        given = clean_input(action_input.content)
        if given and given not in ("{}", "[]", '""') and not NONE_ACTION.match(clean_name(given)):
            parts.append(given)
    return "\n".join(part for part in parts if part).strip()


def _call_step(call: re.Match[str], given: str, tools: tuple[str, ...]) -> ToolCall | FinalAnswer | None:
    name = call.group("name").strip()
    if tools and exact_tool(name, tools) is None and norm(name) not in ANSWER_ACTIONS:
        return None  # "Use the requests library(...)" and the like: not a call of a known tool
    args = call.group("paren") if call.group("paren") is not None else call.group("bracket")
    return _step(name, given or args_to_input(args or ""), tools)


def _step(name: str, given: str, tools: tuple[str, ...]) -> ToolCall | FinalAnswer | None:
    if exact_tool(name, tools) is None and norm(name) in ANSWER_ACTIONS:
        return FinalAnswer(answer_text(given)) if given else None
    tool = match_tool(name, tools)
    return ToolCall(tool, _uncall(given, tool))


def _uncall(given: str, tool: str) -> str:
    """`caption_image(img1)` as the input of caption_image: the model wrote the call again; keep its arguments."""
    call = CALL.match(given) if len(given) <= CALL_MAX_LEN else None
    if call is None or norm(clean_name(call.group("name"))) != norm(tool):
        return given
    args = call.group("paren") if call.group("paren") is not None else call.group("bracket")
    return args_to_input(args or "")
