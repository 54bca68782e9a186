"""The reply grammar (llm/grammar.py) under random token choices: every reply it lets through is one the parser
reads as an action on a real tool with an input the binder accepts and only existing images, or an answer, and
every action fits the token cap. No model: a random "model" picks among the tokens the mask allows."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.zoo import planner_tokenizer

from vchat.chat.binding import bind_input
from vchat.llm.constrain import Constraint
from vchat.llm.grammar import int_range, react_grammar
from vchat.llm.reply_spec import ReplySpec
from vchat.react import FinalAnswer, ToolCall, parse_reply
from vchat.tools.registry import all_tools

pytest.importorskip("llguidance")
HANDLES = ("img1", "img2", "img3")


class _Ref:
    def __init__(self, handle: str) -> None:
        self.handle = handle


def _resolve(name: str) -> Any:
    if name not in HANDLES:
        raise ValueError(f"unknown image {name}")
    return _Ref(name)


def _walk(tokenizer: Any, grammar: str, seed: int, cap: int, start: list[int] | None = None) -> tuple[str, int]:
    """A reply picked at random among the tokens the grammar allows (after the `start` tokens, if given)."""
    import torch

    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    constraint = Constraint(tokenizer, grammar, len(tokenizer), end)
    generator = torch.Generator().manual_seed(seed)
    ids = list(constraint.forced())
    for token in start or []:
        constraint.accept(token)
        ids += [token, *constraint.forced()]
    while not constraint.done and len(ids) <= cap:
        logits = torch.randn(1, len(tokenizer), generator=generator) * 3
        constraint.mask(logits)
        token = int(torch.multinomial(torch.softmax(logits[0], -1), 1, generator=generator))
        if token == end:
            break
        constraint.accept(token)
        ids += [token, *constraint.forced()]
    return tokenizer.decode(ids), len(ids)


@pytest.mark.parametrize("cap", [96, 400])
def test_random_walks_give_only_runnable_actions_or_answers(cap: int) -> None:
    tokenizer = planner_tokenizer()
    tools = {tool.name: type(tool) for tool in all_tools()}
    spec = ReplySpec.of(tools.values(), HANDLES)
    grammar = react_grammar(spec, cap, lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    kinds = {"action": 0, "answer": 0}
    for seed in range(60):
        text, length = _walk(tokenizer, grammar, seed, cap)
        parsed = parse_reply(text, tuple(tools))
        if isinstance(parsed, ToolCall):
            kinds["action"] += 1
            assert length <= cap, text  # an action always fits the cap, so it is never cut
            bound = bind_input(tools[parsed.tool], parsed.input, _resolve)  # raises on any invalid input
            assert all(ref.handle in HANDLES for ref in bound.values() if isinstance(ref, _Ref))
        else:
            assert isinstance(parsed, FinalAnswer) and text.split("\n", 1)[1].startswith("AI: "), text
            named = [f"img{int(n)}" for n in re.findall(r"\bimg(\d+)\b", parsed.text, re.IGNORECASE)]
            assert set(named) <= set(HANDLES), text  # the answer names no image that does not exist
            kinds["answer"] += 1
    assert kinds["action"] >= 10 and kinds["answer"] >= 10  # both branches were really explored


def test_no_image_yet_means_no_tool_that_needs_one() -> None:
    tools = [type(tool) for tool in all_tools()]
    grammar = react_grammar(ReplySpec.of(tools, ()), 400)
    assert '"generate_image\\nAction Input: "' in grammar
    assert "flip_image" not in grammar and '\\"image\\": ' not in grammar


def test_a_small_cap_leaves_only_the_answer() -> None:
    grammar = react_grammar(ReplySpec.of([type(tool) for tool in all_tools()], HANDLES), 16)
    assert "action" not in grammar and "answer" in grammar


def test_whole_number_ranges_are_exact() -> None:
    for low, high in [(0, 1000), (64, 2048), (1, 150), (0, 359), (7, 7)]:
        pattern = re.compile(int_range(low, high))
        assert [n for n in range(3000) if pattern.fullmatch(str(n))] == list(range(low, high + 1))
        assert not pattern.fullmatch("007")


@pytest.mark.parametrize("cap", [128, 400])
def test_native_random_walks_give_only_runnable_calls_or_answers(cap: int) -> None:
    from vchat.llm.grammar_native import native_grammar
    from vchat.llm.local_tools import parse_calls
    from vchat.tools.base import offered

    tokenizer = planner_tokenizer(("<tool_call>", "</tool_call>", "<function=", "<parameter="))
    tools = {tool.name: type(tool) for tool in all_tools()}
    names = {tool.name for tool in offered(all_tools())}
    spec = ReplySpec.of(tools.values(), HANDLES)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    grammar = native_grammar(spec, names, cap, count)
    kinds = {"call": 0, "answer": 0}
    # Half the walks start with `<tool_call>` (random choices almost never spell it), then go on at random.
    opening = tokenizer("<tool_call>", add_special_tokens=False)["input_ids"]
    for seed in range(60):
        text, length = _walk(tokenizer, grammar, seed, cap, opening if seed % 2 else None)
        calls = parse_calls(text[text.find("<tool_call>") :]) if "<tool_call>" in text else []
        if calls:
            kinds["call"] += 1
            assert length <= cap, text
            (call,) = calls
            assert call.name in names, text
            bound = bind_input(tools[call.name], call.arguments, _resolve)
            assert all(ref.handle in HANDLES for ref in bound.values() if isinstance(ref, _Ref))
        else:
            kinds["answer"] += 1
            named = [f"img{int(n)}" for n in re.findall(r"\bimg(\d+)\b", text, re.IGNORECASE)]
            assert set(named) <= set(HANDLES), text
    assert kinds["call"] >= 10 and kinds["answer"] >= 10
