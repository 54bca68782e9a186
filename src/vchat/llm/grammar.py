"""The grammar of one ReAct reply, in llguidance's Lark dialect, built from the tools' declared fields.

A reply is `Thought: …` then either `Action: TOOL` with an `Action Input:` JSON object valid for that tool's
fields (required ones first, then any optional ones in declared order; images only by an existing handle,
choices only from their list, numbers within their bounds where the field has them), or `AI: ` and a free answer.
Thoughts, answers and text values stay free, but the thought and each text value have a token budget
(llguidance's `max_tokens=` on a terminal ends it there), so an action always fits in the reply's token cap. The
fixed words of an action are counted with the tokenizer, plus a reserve for a model that spells a tool or a value
in more tokens than the tokenizer would. Text values take no backslash escapes, so a value cut at its budget is
still a whole JSON string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from vchat.llm.reply_spec import ReplySpec, ToolShape

PREFIX, ACTION, INPUT, ANSWER = "Thought: ", "\nAction: ", "\nAction Input: ", "\nAI: "
MAX_TEXT_TOKENS = 256  # one text value at most, however large the reply's cap
MAX_THOUGHT_TOKENS = 64
Counter = Callable[[str], int]


def literal(text: str) -> str:
    """A Lark string literal for `text`."""
    return json.dumps(text, ensure_ascii=False)


def thought_tokens(max_tokens: int, smallest_call: int) -> int:
    """The thought's token budget: a third of what the cheapest call leaves, 4 to MAX_THOUGHT_TOKENS."""
    return max(4, min(MAX_THOUGHT_TOKENS, (max_tokens - 1 - smallest_call) // 3))


def _same_length(a: str, b: str) -> str:
    """A regex for the numbers from a to b written with the same number of digits."""
    if len(a) == 1:
        return a if a == b else f"[{a}-{b}]"
    if a[0] == b[0]:
        return a[0] + _same_length(a[1:], b[1:])
    rest = len(a) - 1
    parts = [a[0] + _same_length(a[1:], "9" * rest)]
    if int(a[0]) + 1 <= int(b[0]) - 1:
        parts.append(f"[{int(a[0]) + 1}-{int(b[0]) - 1}][0-9]{{{rest}}}")
    parts.append(b[0] + _same_length("0" * rest, b[1:]))
    return "(?:" + "|".join(parts) + ")"


def int_range(low: int, high: int) -> str:
    """A regex for the whole numbers low..high (0 <= low <= high), without leading zeros."""
    parts = []
    for digits in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (digits - 1) if digits > 1 else 0)
        last = min(high, 10**digits - 1)
        if first <= last:
            parts.append(_same_length(str(first), str(last)))
    return "(?:" + "|".join(parts) + ")"


def _number(spec: Any) -> tuple[str, str]:
    """A number value (regex lexeme) within the field's bounds and its longest form.

    Whole numbers are held to their bounds exactly; for decimals the whole part is, and a bound with a fraction
    (a minimum of 1.1) is left to the binder, whose observation says what was expected.
    """
    low, high = spec.minimum, spec.maximum
    top = math.ceil(max(abs(low or 0), abs(high))) if high is not None else 10**6 - 1
    if spec.kind == "int":
        floor = math.ceil(low) if low is not None and low >= 0 else 0
        sign = "-?" if low is None or low < 0 else ""
        return f"/{sign}{int_range(floor, max(floor, top))}/", "-" * len(sign[:1]) + "9" * len(str(top))
    sign = "-?" if low is not None and low < 0 else ""
    floor = math.floor(low) if low is not None and low >= 0 else 0
    fraction = "(?:\\.[0-9]{1,4})?"
    if high is not None and float(high).is_integer() and top > floor:
        whole = f"(?:{int_range(floor, top - 1)}{fraction}|{top}(?:\\.0{{1,4}})?)"
    else:
        whole = f"{int_range(floor, max(floor, top))}{fraction}"
    return f"/{sign}{whole}/", "-" * len(sign[:1]) + "9" * len(str(top)) + ".9999"


def _value(spec: Any, handles: tuple[str, ...]) -> tuple[str, str] | None:
    """(the value's grammar, its longest fixed form); None when no valid value exists (no image yet)."""
    kind = spec.kind
    if kind == "image":
        if not handles:
            return None
        return " | ".join(literal(json.dumps(h)) for h in handles), json.dumps(max(handles, key=len))
    if kind == "choice":
        return " | ".join(literal(json.dumps(c)) for c in spec.choices), json.dumps(max(spec.choices, key=len))
    if kind == "bool":
        return '"true" | "false"', "false"
    if kind in ("int", "float"):
        return _number(spec)
    return "TEXT", '""'  # placeholder: the text terminal is named once its budget is known


def _plan(
    tool: ToolShape, handles: tuple[str, ...], budget: int, count: Counter, optional: bool
) -> tuple[list[Any], int] | None:
    """The fields a call writes and each text value's token budget; None when the call cannot fit."""
    fields = [f for f in tool.fields if f.required] + ([f for f in tool.fields if not f.required] if optional else [])
    written: list[Any] = []
    skeleton: list[str] = []
    for spec in fields:
        value = _value(spec, handles)
        if value is None:
            if spec.required:
                return None
            continue
        written.append(spec)
        skeleton.append(f"{json.dumps(spec.name)}: {value[1]}")
    fixed = count(f"{ACTION.strip()}{tool.name}{INPUT}{{{', '.join(skeleton)}}}")
    fixed += len(tool.name) // 2 + 2 * len(written) + 2  # reserve: a name or value spelled in more tokens
    texts = sum(1 for spec in written if spec.kind == "text")
    left = budget - fixed
    each = min(MAX_TEXT_TOKENS, left // texts) if texts else MAX_TEXT_TOKENS
    if left < 0 or each < 1:
        return None
    return written, each


def _call(tool: ToolShape, handles: tuple[str, ...], budget: int, count: Counter) -> tuple[str, int] | None:
    """(`NAME\\nAction Input: {…}` for one tool, its text budget), or None when it cannot be called now."""
    found = json_input(tool, handles, budget, count)
    if found is None:
        return None
    return f"{literal(tool.name + INPUT)} {found[0]}", found[1]


def json_input(tool: ToolShape, handles: tuple[str, ...], budget: int, count: Counter) -> tuple[str, int] | None:
    """(the grammar of a JSON object valid for the tool's fields, its text values' token budget), or None when no
    such object fits `budget` tokens or names an image when there is none. Uses the `textN` rules `text_rules`
    writes."""
    plan = _plan(tool, handles, budget, count, True) or _plan(tool, handles, budget, count, False)
    if plan is None:
        return None
    fields, each = plan
    pairs: list[tuple[bool, str]] = []
    for spec in fields:
        value = _value(spec, handles)
        assert value is not None
        grammar = f'"\\"" text{each}{"" if spec.required else "_opt"} "\\""' if spec.kind == "text" else value[0]
        pairs.append((spec.required, f"{literal(json.dumps(spec.name) + ': ')} ({grammar})"))
    required = [text for need, text in pairs if need]
    optional = [text for need, text in pairs if not need]
    if required:
        inner = ' ", " '.join(required) + "".join(f' (", " {text})?' for text in optional)
    elif optional:
        # No required field: `{}` or the optional ones, the first written without a comma before it.
        firsts = [optional[i] + "".join(f' (", " {text})?' for text in optional[i + 1 :]) for i in range(len(optional))]
        inner = "(" + " | ".join(firsts) + ")?"
    else:
        inner = ""
    return f"{literal('{')} {inner} {literal('}')}", each


def _names_other_than(handles: tuple[str, ...]) -> str:
    """A regex for texts that name an image `imgN` (a whole word, any case, leading zeros read away) not in
    `handles`."""
    known = sorted({int(h[3:]) for h in handles if h[3:].isdigit()})
    gaps, start = [], 0
    for number in known:
        if number > start:
            gaps.append(int_range(start, number - 1))
        start = number + 1
    width = len(str(start))
    if start < 10**width - 1:
        gaps.append(int_range(start, 10**width - 1))
    elif start == 10**width - 1:
        gaps.append(str(start))
    gaps.append(f"[1-9][0-9]{{{width},}}")  # longer than any range above
    return f"(?s:(?:.*[^0-9A-Za-z_])?)[iI][mM][gG]0*(?:{'|'.join(gaps)})(?:[^0-9A-Za-z_](?s:.*))?"


def react_grammar(spec: ReplySpec, max_tokens: int, count: Counter = len) -> str:
    """The Lark grammar of a reply (an action on an offered tool, or an answer) capped at `max_tokens` tokens.

    `count` gives the tokens of a fixed text (the tokenizer's; by default its characters, the most a byte-level
    tokenizer can take for ASCII text).
    """
    smallest = min((count(ACTION.strip() + tool.name + INPUT + "{}") for tool in spec.tools), default=0)
    thought = thought_tokens(max_tokens, smallest + count(PREFIX))
    # What an action may spend: the cap less `Thought: `, the thought at its longest and the end of the reply.
    budget = max_tokens - 1 - count(PREFIX) - thought
    calls = [call for call in (_call(tool, spec.handles, budget, count) for tool in spec.tools) if call is not None]
    lines = [
        f"start: {literal(PREFIX)} thought (action | answer)" if calls else f"start: {literal(PREFIX)} thought answer",
        f"thought[max_tokens={thought}]: /[^\\x00-\\x1F\\x7F]+/",
        f"answer: {literal(ANSWER)} ANSWER",
        # Free, but no control characters, and no image name the session does not have (as the agent reads them).
        f"ANSWER: /[^\\x00-\\x08\\x0B-\\x1F\\x7F]+/ & ~/{_names_other_than(spec.handles)}/",
    ]
    if calls:
        lines.append(f"action: {literal(ACTION)} (" + "\n    | ".join(text for text, _ in calls) + ")")
        lines += text_rules({each for _, each in calls})
    return "\n".join(lines) + "\n"


def text_rules(budgets: set[int]) -> list[str]:
    """The `textN` / `textN_opt` terminals: a JSON string's characters with no escapes, at most N tokens."""
    lines = []
    for each in sorted(budgets):
        # A required value starts with a visible character: the binder refuses a blank one.
        lines.append(f'text{each}[max_tokens={each}]: /[^"\\\\\\x00-\\x1F\\x7F\\s][^"\\\\\\x00-\\x1F\\x7F]*/')
        lines.append(f'text{each}_opt[max_tokens={each}]: /[^"\\\\\\x00-\\x1F\\x7F]*/')
    return lines
