"""Lenient reader of the model's text ReAct replies: one tool call or one final answer."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vchat import react_reminders as reminders
from vchat.errors import ParseError

__all__ = ["FORMAT_REMINDER", "FinalAnswer", "ToolCall", "parse_reply"]


@dataclass(frozen=True)
class ToolCall:
    """The model asks to run `tool`; `input` is its raw input with one layer of quoting removed."""

    tool: str
    input: str


@dataclass(frozen=True)
class FinalAnswer:
    """The model's answer to the user (stripped, inner newlines kept)."""

    text: str


FORMAT_REMINDER = (
    "Reply in exactly one of these two forms:\n"
    "Thought: Do I need to use a tool? Yes\nAction: TOOL\nAction Input: INPUT\n"
    "or\n"
    "Thought: Do I need to use a tool? No\nAI: your answer"
)


def parse_reply(text: str, tool_names: Sequence[str] = ()) -> ToolCall | FinalAnswer:
    """Read a model reply as a tool call or a final answer; raise ParseError when it has no usable meaning."""
    tools = tuple(tool_names)
    cleaned = _clean(text)
    if not cleaned.strip():
        raise _error("it was empty", tools)
    return _Reader(_split_sections(cleaned), tools).read()


# --------------------------------------------------------------------------------------------- errors


def _error(why: str, tools: Sequence[str] = (), *, list_tools: bool = False) -> ParseError:
    """A short reminder: what was wrong, then the two forms (tool names only when the name was the problem)."""
    message = f"Could not read your reply: {why}. {FORMAT_REMINDER}"
    if tools and list_tools:
        message += "\nTOOL is one of: " + ", ".join(tools)
    return ParseError(message)


# --------------------------------------------------------------------------------------------- cleaning

# Chat-template control tokens that some servers leave in the text (<|im_end|>, <|eot_id|>,
# DeepSeek's full-width <｜end▁of▁sentence｜>, Llama-2's [/INST], Gemma's <end_of_turn> ...).
_TEMPLATE_TOKEN = re.compile(
    r"<\|[^|<>\n]{1,40}\|>|<｜[^｜<>\n]{1,40}｜>|</?s>|\[/?INST\]|<(?:start|end)_of_turn>|<eos>|<bos>",
    re.IGNORECASE,
)
# Tokens that end the model's turn: whatever follows is the model imagining the next turn.
_END_OF_TURN = re.compile(
    r"<\|(?:im_end|eot_id|eom_id|end|endoftext|end_of_text)\|>|<｜end[^｜<>\n]{0,30}｜>|</s>|<end_of_turn>|<eos>",
    re.IGNORECASE,
)
# A role name written right after a start-of-turn token ("<|im_start|>assistant", "<start_of_turn>model").
_ROLE_HEADER = re.compile(
    r"(?:<\|im_start\|>|<start_of_turn>|<\|start_header_id\|>)[ \t]*(?:assistant|model|user|system)?"
    r"[ \t]*(?:<\|end_header_id\|>)?[ \t]*\n?",
    re.IGNORECASE,
)
# Reasoning blocks of R1/Qwen3-style models; <thinking>/<reasoning> are rarer spellings.
_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_THINK_CLOSE = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)
_THINK_OPEN = re.compile(r"<(?:think|thinking|reasoning)>", re.IGNORECASE)
# A reply entirely wrapped in one code fence (some models fence the whole Thought/Action block).
_WHOLE_FENCE = re.compile(r"\A\s*```[\w+-]*[ \t]*\n(.*?)\n[ \t]*```\s*\Z", re.DOTALL)
_BARE_FENCE_LINE = re.compile(r"^[ \t]*```[\w+-]*[ \t]*$")
# "Do I need to use a tool? No AI: hi": move what follows the yes/no decision to its own line.
_DECISION_TAIL = re.compile(
    r"(\b(?:do|no) i need to use a tool\s*\?[ \t]*(?:yes|no)\b[.!]?)[ \t]+(?=\S)", re.IGNORECASE
)
# "Action: x Action Input: y" on one line: split before a later keyword. Capitalised keywords only,
# and only on Thought/Action lines, so ordinary prose is not cut up.
_INLINE_KEYWORD = re.compile(
    r"(?<=\S)[ \t]+(?=(?:\*\*)?(?:Action[ _]?Input|Action|Final Answer|Observation)(?:\*\*)?[ \t]*:)"
)
_THOUGHT_OR_ACTION_LINE = re.compile(r"^[ \t]*(?:\*\*)?(?:Thought|Action)\b", re.IGNORECASE)


def _clean(text: str) -> str:
    """Drop template tokens, reasoning blocks and an outer fence; normalise line breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _strip_template_tokens(text)
    text = _strip_thinking(text)
    text = _unwrap_whole_fence(text)
    text = _DECISION_TAIL.sub(lambda m: m.group(1) + "\n", text)
    return "\n".join(_split_inline_keywords(line) for line in text.split("\n"))


def _strip_template_tokens(text: str) -> str:
    for match in _END_OF_TURN.finditer(text):
        before = text[: match.start()]
        if _TEMPLATE_TOKEN.sub("", _ROLE_HEADER.sub("", before)).strip():
            text = before
            break
    return _TEMPLATE_TOKEN.sub("", _ROLE_HEADER.sub("", text))


def _strip_thinking(text: str) -> str:
    removed: list[str] = []

    def drop(match: re.Match[str]) -> str:
        removed.append(match.group(2))
        return ""

    text = _THINK_BLOCK.sub(drop, text)
    closers = list(_THINK_CLOSE.finditer(text))
    if closers:  # a lone </think>: the template opened the block, so all before it is thinking
        removed.append(text[: closers[-1].start()])
        text = text[closers[-1].end() :]
    opener = _THINK_OPEN.search(text)
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
        keyword = _keyword(line)
        if keyword is not None:
            first = offset if first is None else first
            has_step = has_step or keyword[0] in ("action", "final")
        offset += len(line) + 1
    return first if has_step else None


def _unwrap_whole_fence(text: str) -> str:
    match = _WHOLE_FENCE.match(text)
    if match and any(_keyword(line) for line in match.group(1).split("\n")):
        return match.group(1)
    lines = text.strip("\n").split("\n")
    if len(lines) > 1 and _BARE_FENCE_LINE.match(lines[0]) and _keyword(lines[1]):
        lines = lines[1:-1] if _BARE_FENCE_LINE.match(lines[-1]) else lines[1:]
        return "\n".join(lines)
    return text


# "Action: caption_image, Input: img1" (or "; Input:", " - Input:"): the separator goes, the input gets its line.
_ACTION_NAME_LINE = re.compile(r"^[ \t]*(?:\*\*)?Action(?:\*\*)?[ \t]*:", re.IGNORECASE)
_INLINE_INPUT = re.compile(
    r"[ \t]*(?:[,;]|[ \t][-–—])[ \t]*(?=(?:\*\*)?(?:Action[ _]?)?Input(?:\*\*)?[ \t]*:)", re.IGNORECASE
)


def _split_inline_keywords(line: str) -> str:
    if _ACTION_NAME_LINE.match(line):
        line = _INLINE_INPUT.sub("\n", line, count=1)
    if _THOUGHT_OR_ACTION_LINE.match(line):
        return "\n".join(_INLINE_KEYWORD.sub("\n", part) for part in line.split("\n"))
    return line


# --------------------------------------------------------------------------------------------- sections

# One keyword line, however dressed: "Action:", "**Action:**", "**Action**:", "### Action", "1. Thought:",
# "ACTION:", "Action Input" / "Action_Input" / "ActionInput", "Action 2:" (ReAct paper), "FinalAnswer:".
_KEYWORD_LINE = re.compile(
    r"""^[ \t]*
    (?P<header>\#{1,6}[ \t]*)?          # markdown header
    (?:[-*+>][ \t]+)?                   # bullet or quote mark
    (?:\d{1,2}[.)][ \t]*)?              # numbering
    (?P<bold>\*{1,2}|_{2})?             # bold/italic opening
    (?P<kw>final[ \t_-]*answer|action[ \t_-]*(?:\d+[ \t]*)?input|thoughts?|action|observations?
        |question|answer|ai|input|human|user)
    [ \t]*\d*[ \t]*                     # step number
    (?(bold)(?:\*{1,2}|_{2})?)[ \t]*    # bold closed before the colon
    (?P<colon>[:：])?
    [ \t]*(?(bold)(?:\*{1,2}|_{2})?)    # bold closed after the colon (only if it was opened)
    (?P<rest>.*)$                       # the value (stripped in code: a lazy .*? here backtracks)""",
    re.IGNORECASE | re.VERBOSE,
)
_KINDS = {
    "thought": "thought",
    "thoughts": "thought",
    "action": "action",
    "observation": "observation",
    "observations": "observation",
    "question": "question",
    "human": "stop",
    "user": "stop",
    "ai": "final",
    "answer": "final",
    "input": "bare_input",
}


def _keyword(line: str) -> tuple[str, str] | None:
    """(kind, rest of line) when `line` starts with a protocol keyword, else None."""
    match = _KEYWORD_LINE.match(line)
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
    return _KINDS[word], rest


@dataclass
class _Section:
    """A keyword and the lines under it; kind "text" is what the model wrote before any keyword."""

    kind: str
    lines: list[str] = field(default_factory=list)  # first line: the rest of the keyword line
    raw: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "\n".join(self.lines).strip()


def _split_sections(text: str) -> list[_Section]:
    sections = [_Section("text")]
    in_fence = False
    for line in text.split("\n"):
        current = sections[-1]
        keyword = None if in_fence else _keyword(line)
        if keyword is not None and not _starts_section(keyword[0], current.kind):
            keyword = None
        if keyword is None:
            current.lines.append(line)
            current.raw.append(line)
            if current.kind in ("input", "final") and _BARE_FENCE_LINE.match(line):
                in_fence = not in_fence  # keyword-looking lines inside a fenced input are input
            continue
        kind, rest = keyword
        kind = "input" if kind == "bare_input" else kind
        sections.append(_Section(kind, [rest], [line]))
        in_fence = False
    return sections


def _starts_section(kind: str, current: str) -> bool:
    if kind == "bare_input":  # a bare "Input:" only counts right after an Action line
        return current == "action"
    return not (current == "final" and kind == "final")  # "Answer:" inside an answer is answer text


# --------------------------------------------------------------------------------------------- reading

_NONE_ACTION = re.compile(
    r"^(?:none|n/?a|null|nil|nothing|not[ _-]applicable|no(?:[ _-]+(?:tools?|actions?)(?:[ _-]+needed)?)?)\b",
    re.IGNORECASE,
)
# Pseudo-actions that mean "answer the user" when no real tool has that name.
_ANSWER_ACTIONS = frozenset(
    {"final_answer", "finalanswer", "final", "finish", "answer", "respond", "response", "reply", "speak", "say", "ai"}
)
# "Do I need to use a tool? No" at the start of a Thought; what follows a "No" is the answer.
_DECISION = re.compile(r"^\W*(?:do|no)\s+i\s+need\s+to\s+use\s+a\s+tool\s*\??\s*(?P<answer>yes|no)\b[.!]?", re.I)


class _Reader:
    """Walks the sections of one reply and decides what it means."""

    def __init__(self, sections: list[_Section], tools: tuple[str, ...]) -> None:
        self.tools = tools
        self.kept: list[_Section] = []
        self.action: _Section | None = None
        self.action_input: _Section | None = None
        self.final: _Section | None = None
        self.reply_parts: list[str] = []
        self._walk(sections)

    def _walk(self, sections: list[_Section]) -> None:
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
                self.reply_parts.append(_after_no_decision(section.content))
            elif section.kind == "action":
                self.action = section
            elif section.kind == "input" and self.action is not None and self.action_input is None:
                self.action_input = section
            elif section.kind == "final" and self.final is None:
                self.final = section

    def read(self) -> ToolCall | FinalAnswer:
        if self.action is not None:
            step = _read_action(self.action, self.action_input, self.tools)
            if step is not None:
                return step
            self.reply_parts.append(_action_remainder(self.action, self.action_input))
        else:
            recorded = _record_call(self.kept, self.tools)
            if recorded is not None:
                return recorded
            blob = _find_blob("\n".join(line for s in self.kept if s.kind != "final" for line in s.raw), self.tools)
            if blob is None and self.final is not None and _unfence(self.final.content)[:1] in ("{", "["):
                # "Answer: {"action": ...}": a stray answer keyword before a JSON action blob.
                blob = _find_blob(_unfence(self.final.content), self.tools)
            if blob is not None:
                return blob
            if self.final is None and any(s.kind == "input" for s in self.kept):
                raise _error("`Action Input:` came without an `Action:` line naming the tool", self.tools)
        if self.final is not None:
            answer = reminders.tidy_answer(self.final.content)
            if not answer:
                raise _error("your `AI:` line was empty", self.tools)
            return FinalAnswer(answer)
        return self._plain_reply()

    def _plain_reply(self) -> FinalAnswer:
        reply = "\n".join(part for part in self.reply_parts if part).strip()
        if self.action is not None and not reply:
            raise _error("`Action: None` came without an answer", self.tools)
        if not reply:
            thought = " ".join(s.content for s in self.kept if s.kind == "thought")
            if thought:
                raise _error(reminders.problem(thought, self.tools) or reminders.THOUGHT_ONLY, self.tools)
            raise _error("it had no Action and no `AI:` answer", self.tools)
        problem = reminders.problem(reply, self.tools)
        if problem is not None:
            raise _error(problem, self.tools)
        return FinalAnswer(reply)


# A line in the shape of vchat's own history records ("img3 = instruct_edit(img2, ...)"), which a model
# may imitate instead of writing Action lines: the call it wants run (a text result "-> ..." may follow).
_RECORD_LINE = re.compile(
    r"^[ \t]*(?:img\d+(?:[ \t]*,[ \t]*img\d+)*[ \t]*=[ \t]*)?(?P<call>[A-Za-z_]\w*[ \t]*\(.*\))[ \t]*(?:->.*)?$"
)


def _record_call(sections: list[_Section], tools: tuple[str, ...]) -> ToolCall | None:
    """The first history-record-shaped line of a known tool, before any answer, as the call it stands for."""
    for section in sections:
        if section.kind not in ("text", "thought"):
            continue
        for line in section.lines:
            match = _RECORD_LINE.match(line) if len(line) <= _CALL_MAX_LEN else None
            call = _CALL.match(match.group("call")) if match else None
            if call is None:
                continue
            name = _exact_tool(call.group("name"), tools)
            if name is not None:
                args = call.group("paren") if call.group("paren") is not None else call.group("bracket")
                return ToolCall(name, _args_to_input(args or ""))
    return None


def _after_no_decision(thought: str) -> str:
    match = _DECISION.match(thought)
    if match and match.group("answer").lower() == "no":
        return thought[match.end() :].strip()
    return ""


def _action_remainder(action: _Section, action_input: _Section | None) -> str:
    """Text written with `Action: None`: the model's answer when it gave no AI line.

    It may follow on the same line after a full stop or dash ("None. img3 is ready"), on the
    next lines, or as the `Action Input:` of the non-action.
    """
    first, _, below = action.content.partition("\n")
    parts = [reminders.none_rest(first), below.strip()]
    if action_input is not None:
        given = _clean_input(action_input.content)
        if given and given not in ("{}", "[]", '""') and not _NONE_ACTION.match(_clean_name(given)):
            parts.append(given)
    return "\n".join(part for part in parts if part).strip()


# --------------------------------------------------------------------------------------------- actions

# "generate_image(prompt='a cat')", "caption_image (img1)", "Search[query]" (ReAct paper), "Finish[answer]".
_CALL = re.compile(
    r"^[`*\"']*(?P<name>[A-Za-z_][\w.\- ]*?)[`*\"']*\s*(?:\((?P<paren>.*)\)|\[(?P<bracket>.*)\])\s*[.;,]?$",
    re.DOTALL,
)
_CALL_MAX_LEN = 2000  # longer action lines are prose; this also bounds the regex's backtracking


def _read_action(
    action: _Section, action_input: _Section | None, tools: tuple[str, ...]
) -> ToolCall | FinalAnswer | None:
    """The step an action section asks for; None for `Action: None` and its kin."""
    value = action.content
    if _unfence(value).lstrip().startswith(("{", "[")):
        blob = _find_blob(_unfence(value), tools, anywhere=True)
        if blob is not None:
            return blob
    name_line = value.split("\n", 1)[0].strip() if value else ""
    given = _clean_input(action_input.content) if action_input is not None else ""
    bare = _clean_name(name_line)
    if not bare or (_NONE_ACTION.match(bare) and _exact_tool(bare, tools) is None):
        return None
    call = _CALL.match(name_line.replace("\\_", "_")) if len(name_line) <= _CALL_MAX_LEN else None
    if call:
        step = _call_step(call, given, tools)
        if step is not None:
            return step
    if not given and reminders.is_sentence_action(bare, tools):
        return None  # "(No action needed, just calculation)": prose in the Action slot, not a tool
    return _step(bare, given, tools)


def _call_step(call: re.Match[str], given: str, tools: tuple[str, ...]) -> ToolCall | FinalAnswer | None:
    name = call.group("name").strip()
    if tools and _exact_tool(name, tools) is None and _norm(name) not in _ANSWER_ACTIONS:
        return None  # "Use the requests library(...)" and the like: not a call of a known tool
    args = call.group("paren") if call.group("paren") is not None else call.group("bracket")
    return _step(name, given or _args_to_input(args or ""), tools)


def _step(name: str, given: str, tools: tuple[str, ...]) -> ToolCall | FinalAnswer | None:
    if _exact_tool(name, tools) is None and _norm(name) in _ANSWER_ACTIONS:
        return FinalAnswer(_answer_text(given)) if given else None
    tool = _match_tool(name, tools)
    return ToolCall(tool, _uncall(given, tool))


def _uncall(given: str, tool: str) -> str:
    """`caption_image(img1)` as the input of caption_image: the model wrote the call again; keep its arguments."""
    call = _CALL.match(given) if len(given) <= _CALL_MAX_LEN else None
    if call is None or _norm(_clean_name(call.group("name"))) != _norm(tool):
        return given
    args = call.group("paren") if call.group("paren") is not None else call.group("bracket")
    return _args_to_input(args or "")


# The one field of an answer-action's object input that holds the text: {"answer": "..."}.
_ANSWER_FIELDS = ("answer", "final_answer", "text", "response", "output", "content", "message")


def _answer_text(given: str) -> str:
    """The answer of a final-answer pseudo-action, unwrapped from a one-field JSON object if it is one."""
    if given.lstrip().startswith("{"):
        try:
            value = json.loads(given)
        except ValueError:
            return given.strip()
        if isinstance(value, dict) and len(value) == 1:
            ((key, text),) = value.items()
            if _norm(str(key)) in _ANSWER_FIELDS and isinstance(text, str):
                return text.strip()
    return given.strip()


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _clean_name(text: str) -> str:
    """The action text without decoration: backticks, quotes, brackets, bold, a trailing period."""
    text = text.replace("\\_", "_").strip()
    previous = None
    while previous != text:
        previous = text
        text = text.strip().strip("`*\"'“”").strip()
        text = re.sub(
            r"^\[(.*)\]$|^<(.*)>$|^\{(.*)\}$|^\((.*)\)$", lambda m: next(g for g in m.groups() if g is not None), text
        )
        text = text.rstrip(".,;:!")
    return text


def _exact_tool(name: str, tools: tuple[str, ...]) -> str | None:
    wanted = _norm(_clean_name(name))
    return next((tool for tool in tools if _norm(tool) == wanted), None)


def _match_tool(name: str, tools: tuple[str, ...]) -> str:
    """Map the action text to a known tool: exact, then a tool name mentioned as a word (first mention)."""
    cleaned = _clean_name(name)
    if not tools:
        token = re.match(r"[\w.\-/]+", cleaned)
        return token.group(0).rstrip(".-") if token else cleaned
    exact = _exact_tool(cleaned, tools)
    if exact is not None:
        return exact
    mentions: list[tuple[int, int, str]] = []
    for tool in tools:
        for match in re.finditer(rf"(?<![A-Za-z0-9_]){re.escape(tool)}(?![A-Za-z0-9_])", cleaned, re.IGNORECASE):
            mentions.append((match.start(), -len(tool), tool))
    distinct = {tool for _, _, tool in mentions}
    if len(distinct) >= 3:
        raise _error("`Action:` must name exactly one tool, not a list of them", tools, list_tools=True)
    if mentions:
        return min(mentions)[2]
    return cleaned.split("\n", 1)[0]


def _args_to_input(args: str) -> str:
    """Arguments of a call-style action as a tool input: keywords become a JSON object."""
    args = args.strip()
    if not args or args[0] in "{[":
        return args
    pieces = _split_top_level(args)
    if all(re.match(r"^\s*[A-Za-z_]\w*\s*=", piece) for piece in pieces):
        fields = {}
        for piece in pieces:
            key, value = piece.split("=", 1)
            fields[key.strip()] = _literal(value.strip())
        return json.dumps(fields)
    return ", ".join(_unquote(piece.strip()) for piece in pieces)


def _literal(value: str) -> Any:
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are outside quotes and brackets."""
    pieces, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote and text[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    return [piece for piece in pieces if piece.strip()]


# --------------------------------------------------------------------------------------------- inputs

# The tail of an "Observation" keyword cut short by a stop sequence ("...\nObserv").
_CUT_OBSERVATION = re.compile(r"\n[ \t]*(?:\*\*)?obs(?:e(?:r(?:v(?:a(?:t(?:i(?:o(?:n)?)?)?)?)?)?)?)?[ \t]*\Z", re.I)
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "“": "”"}


def _clean_input(text: str) -> str:
    """The input text with one layer of fence or quotes removed and trailing chatter after a JSON value cut."""
    text = _CUT_OBSERVATION.sub("", text.strip()).strip()
    text = _unquote(_unfence(text))
    if text[:1] in ("{", "["):
        end = _balanced_end(text)
        if end is not None and text[end:].strip():
            text = text[:end]
    return text


def _unfence(text: str) -> str:
    text = text.strip()
    if not text.startswith("```"):
        return text
    single = re.fullmatch(r"```(.*?)```", text, re.DOTALL)
    if single and "\n" not in single.group(1):
        return single.group(1).strip()
    body = text.split("\n", 1)[1] if "\n" in text else ""
    closing = body.rfind("```")
    return (body[:closing] if closing != -1 else body).strip()


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] in _QUOTE_PAIRS and text[-1] == _QUOTE_PAIRS[text[0]]:
        inner = text[1:-1]
        if text[0] not in inner and _QUOTE_PAIRS[text[0]] not in inner:
            return inner.strip()
    return text


def _balanced_end(text: str) -> int | None:
    """Index just past the bracketed value that opens `text` (JSON or a Python literal), else None."""
    depth, quote, escaped = 0, "", False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


# --------------------------------------------------------------------------------------------- JSON blobs

# Where a JSON action blob may start: at the start of a line, maybe right after a fence opener.
_BLOB_START = re.compile(r"^[ \t]*(?:```[\w-]*[ \t]*)?(?=[{\[])", re.MULTILINE)
_NAME_KEYS = ("action", "tool", "tool_name", "action_name", "function", "name")
_INPUT_KEYS = ("action_input", "tool_input", "arguments", "args", "parameters", "params", "input", "inputs")
_WRAPPER_KEYS = ("tool_call", "tool_calls", "function_call", "tool_use", "call")


def _find_blob(text: str, tools: tuple[str, ...], anywhere: bool = False) -> ToolCall | FinalAnswer | None:
    """The first JSON action blob in `text` ({"action": ..., "action_input": ...} and its variants)."""
    decoder = json.JSONDecoder()
    starts: list[int] = [m.end() for m in _BLOB_START.finditer(text)]
    if anywhere:
        starts += [m.start() for m in re.finditer(r"[{\[]", text)]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # not JSON, or nested absurdly deep
            continue
        step = _blob_step(value, tools)
        if step is not None:
            return step
    return None


def _blob_step(value: object, tools: tuple[str, ...], depth: int = 0) -> ToolCall | FinalAnswer | None:
    if depth > 3:
        return None
    if isinstance(value, list):
        return next((s for s in (_blob_step(v, tools, depth + 1) for v in value[:3]) if s is not None), None)
    if not isinstance(value, dict):
        return None
    fields = {_norm(str(key)): item for key, item in value.items()}
    if isinstance(fields.get("final_answer"), str):
        return FinalAnswer(fields["final_answer"].strip())
    for key in _WRAPPER_KEYS:
        if key in fields:
            return _blob_step(fields[key], tools, depth + 1)
    name_key = next((key for key in _NAME_KEYS if key in fields), None)
    if name_key is None:
        return None
    name = fields[name_key]
    if isinstance(name, dict):  # {"function": {"name": ..., "arguments": ...}}
        return _blob_step(name, tools, depth + 1)
    if not isinstance(name, str) or not name.strip():
        return None
    input_key = next((key for key in _INPUT_KEYS if key in fields), None)
    if name_key == "name" and input_key is None:
        return None  # {"name": "Bob"} is data, not a call
    given = _blob_input(fields[input_key] if input_key else None)
    if _exact_tool(name, tools) is None and _norm(name) in _ANSWER_ACTIONS:
        return FinalAnswer(_answer_text(given))
    return ToolCall(_match_tool(name, tools), given)


def _blob_input(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)
