"""The grammar of one native tool-call reply of the built-in planner (Qwen3.5's `<tool_call>` XML form), in
llguidance's Lark dialect: either a plain answer, or a short optional text and then one call of an offered tool
whose parameters are that tool's fields with valid values (images by existing handle, choices from their list).

    <tool_call>
    <function=NAME>
    <parameter=KEY>
    VALUE
    </parameter>
    </function>
    </tool_call>

or, as Qwen2.5/3 templates teach it, `<tool_call>\n{"name": NAME, "arguments": {…}}\n</tool_call>` with the same
JSON object the ReAct grammar writes for an Action Input.

Values use the same lexemes and token budgets as the ReAct grammar (llm/grammar.py); a text value holds no `<` or
newline, so it cannot end its parameter early.
"""

from __future__ import annotations

from collections.abc import Callable

from vchat.llm.grammar import (
    MAX_TEXT_TOKENS,
    _names_other_than,
    _number,
    json_input,
    literal,
    text_rules,
    thought_tokens,
)
from vchat.llm.reply_spec import ReplySpec, ToolShape

Counter = Callable[[str], int]
OPEN, CLOSE = "<tool_call>\n<function=", "</function>\n</tool_call>"
JSON_OPEN, JSON_MIDDLE, JSON_CLOSE = '<tool_call>\n{"name": "', '", "arguments": ', "}\n</tool_call>"


def _value(spec: object, handles: tuple[str, ...], text_rule: str) -> str | None:
    kind = getattr(spec, "kind", "text")
    if kind == "image":
        return " | ".join(literal(h) for h in handles) if handles else None
    if kind == "choice":
        return " | ".join(literal(c) for c in getattr(spec, "choices", ()))
    if kind == "bool":
        return '"true" | "false"'
    if kind in ("int", "float"):
        return _number(spec)[0]
    return text_rule


def _call(tool: ToolShape, handles: tuple[str, ...], budget: int, count: Counter) -> tuple[str, int] | None:
    """(the grammar of one call, its text values' token budget), or None when it cannot be made now."""
    fields = [f for f in tool.fields if f.required]
    skeleton = "".join(f"<parameter={f.name}>\n\n</parameter>\n" for f in fields)
    fixed = count(f"{OPEN}{tool.name}>\n{skeleton}{CLOSE}") + len(tool.name) // 2 + 2 * len(fields) + 2
    texts = sum(1 for f in fields if f.kind == "text")
    each = min(MAX_TEXT_TOKENS, (budget - fixed) // texts) if texts else MAX_TEXT_TOKENS
    if budget - fixed < 0 or each < 1:
        return None
    parts = [literal(f"{OPEN}{tool.name}>\n")]
    for spec in fields:
        value = _value(spec, handles, f"native_text{each}")
        if value is None:
            return None
        opening, closing = literal(f"<parameter={spec.name}>\n"), literal("\n</parameter>\n")
        parts.append(f"{opening} ({value}) {closing}")
    parts.append(literal(CLOSE))
    return " ".join(parts), each


def native_grammar(spec: ReplySpec, offered: set[str], max_tokens: int, count: Counter = len) -> str:
    """Lark grammar of a native reply capped at `max_tokens` tokens, for the tools named in `offered`.

    Only required fields are written: the optional ones keep their defaults, which is what a call that leaves them
    out means, and it keeps every call within the cap.
    """
    tools = [tool for tool in spec.tools if tool.name in offered]
    preface = thought_tokens(max_tokens, min((count(OPEN + t.name + CLOSE) for t in tools), default=0))
    budget = max_tokens - 1 - preface
    calls = [c for c in (_call(tool, spec.handles, budget, count) for tool in tools) if c is not None]
    # The JSON form (Qwen2.5/3 templates): {"name": …, "arguments": {…}} between the same tags.
    objects = [
        (tool, json_input(tool, spec.handles, budget - count(JSON_OPEN + tool.name + JSON_CLOSE), count))
        for tool in tools
    ]
    calls += [
        (f"{literal(JSON_OPEN + tool.name + JSON_MIDDLE)} {found[0]} {literal(JSON_CLOSE)}", -found[1])
        for tool, found in objects
        if found is not None
    ]
    answer = f"/[^\\x00-\\x08\\x0B-\\x1F\\x7F]+/ & ~/(?s:.*)<tool_call>(?s:.*)/ & ~/{_names_other_than(spec.handles)}/"
    lines = [f"ANSWER: {answer}"]
    if calls:
        lines.insert(0, "start: ANSWER | (preface)? call")
        lines.append(f"preface[max_tokens={preface}]: /[^<\\x00-\\x1F\\x7F]+\\n/")
        lines.append("call: " + "\n    | ".join(text for text, _ in calls))
        for each in sorted({each for _, each in calls if each > 0}):
            lines.append(f"native_text{each}[max_tokens={each}]: /[^<\\s\\x00-\\x1F\\x7F][^<\\x00-\\x1F\\x7F]*/")
        lines += text_rules({-each for _, each in calls if each < 0})  # the JSON form's text values
    else:
        lines.insert(0, "start: ANSWER")
    return "\n".join(lines) + "\n"
