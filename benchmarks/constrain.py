"""Constrained-decoding libraries side by side on vchat's own grammar shapes (why vchat uses llguidance).

    python benchmarks/constrain.py              # the tests' tiny tokenizer and a 32k BPE trained here
    python benchmarks/constrain.py --json

For each library installed (llguidance; xgrammar when importable, e.g. from `pip install --target DIR xgrammar`
with DIR on PYTHONPATH): the time to build its view of the tokenizer, to compile the grammar, and the CPU time of
one token mask (median over random walks where a random allowed token is taken each step), on the same JSON
Schema: one action object per offered tool with inputs from the tools' field specs and images as an enum of
handles. llguidance also runs vchat's whole ReAct grammar (llm/grammar.py), which xgrammar cannot express: it has
no token budgets on a terminal and no regex intersection/complement (used to keep answers from naming images that
do not exist). The real Qwen3.5 tokenizer (248k entries) cannot be fetched here; mask time grows with the
vocabulary, so these are lower bounds for it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

STEPS = 48  # tokens per walk
WALKS = 6


def _schema(handles: list[str]) -> dict[str, Any]:
    from vchat.tools.base import offered
    from vchat.tools.registry import all_tools
    from vchat.tools.schema import input_schema

    options = []
    for tool in offered(all_tools()):
        inputs = input_schema(type(tool))
        for spec in tool.inputs:
            if spec.kind == "image":
                inputs["properties"][spec.name] = {"type": "string", "enum": handles}
            if spec.kind == "text":
                inputs["properties"][spec.name]["maxLength"] = 80
        options.append(
            {
                "type": "object",
                "properties": {"action": {"const": tool.name}, "action_input": inputs},
                "required": ["action", "action_input"],
                "additionalProperties": False,
            }
        )
    return {"anyOf": options}


def _walk(
    mask: Callable[[], Any], accept: Callable[[int], bool], done: Callable[[], bool], vocab: int, seed: int
) -> list[float]:
    """Seconds per mask along a walk that takes a random allowed token each step."""
    import numpy as np

    rng = np.random.default_rng(seed)
    spent = []
    for _ in range(STEPS):
        if done():
            break
        started = time.perf_counter()
        allowed = mask()
        spent.append(time.perf_counter() - started)
        choices = np.flatnonzero(allowed[:vocab])
        if len(choices) == 0 or not accept(int(rng.choice(choices))):
            break
    return spent


def _llguidance(tokenizer: Any, grammar: str, vocab: int) -> dict[str, float]:
    import llguidance
    import llguidance.hf
    import numpy as np

    started = time.perf_counter()
    ll = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab)
    view = time.perf_counter() - started
    times: list[float] = []
    compile_s = []
    for seed in range(WALKS):
        started = time.perf_counter()
        matcher = llguidance.LLMatcher(ll, grammar, log_level=0)
        matcher.compute_bitmask()  # the first mask includes the lazy compilation
        compile_s.append(time.perf_counter() - started)

        def mask(m: Any = matcher) -> Any:
            return np.unpackbits(np.frombuffer(m.compute_bitmask(), dtype=np.uint8), bitorder="little")

        times += _walk(mask, matcher.consume_token, matcher.is_stopped, vocab, seed)
    return {"tokenizer_s": view, "compile_s": statistics.median(compile_s), "mask_us": statistics.median(times) * 1e6}


def _xgrammar(tokenizer: Any, schema: dict[str, Any], vocab: int) -> dict[str, float]:
    import xgrammar as xgr

    started = time.perf_counter()
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab)
    compiler = xgr.GrammarCompiler(info, cache_enabled=False)
    view = time.perf_counter() - started
    started = time.perf_counter()
    compiled = compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
    compile_s = time.perf_counter() - started
    times: list[float] = []
    for seed in range(WALKS):
        matcher = xgr.GrammarMatcher(compiled)
        bitmask = xgr.allocate_token_bitmask(1, vocab)

        def mask(m: Any = matcher, b: Any = bitmask) -> Any:
            import numpy as np

            m.fill_next_token_bitmask(b)
            return np.unpackbits(b.numpy().view(np.uint8), bitorder="little")

        times += _walk(mask, matcher.accept_token, matcher.is_terminated, vocab, seed)
    return {"tokenizer_s": view, "compile_s": compile_s, "mask_us": statistics.median(times) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import llguidance
    from tests.zoo import planner_tokenizer

    from vchat.llm.grammar import react_grammar
    from vchat.llm.reply_spec import ReplySpec
    from vchat.tools.base import offered
    from vchat.tools.registry import all_tools

    handles = ["img1", "img2", "img3"]
    schema = _schema(handles)
    spec = ReplySpec.of(all_tools(), handles)
    from benchmarks.planner import _tokenizer

    tokenizers = {"tiny (512)": planner_tokenizer(), "BPE 32k": _tokenizer()}
    results: dict[str, dict[str, Any]] = {}
    for name, tokenizer in tokenizers.items():
        vocab = len(tokenizer)
        row: dict[str, Any] = {}
        json_grammar = llguidance.LLMatcher.grammar_from_json_schema(schema)
        row["llguidance, JSON schema"] = _llguidance(tokenizer, json_grammar, vocab)
        count = lambda text, t=tokenizer: len(t(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        react = llguidance.LLMatcher.grammar_from_lark(react_grammar(spec, 1024, count))
        row["llguidance, vchat ReAct grammar"] = _llguidance(tokenizer, react, vocab)
        if importlib.util.find_spec("xgrammar") is not None:
            row["xgrammar, JSON schema"] = _xgrammar(tokenizer, schema, vocab)
        else:
            row["xgrammar, JSON schema"] = {"missing": "not installed"}
        results[name] = row
    del offered
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"{'tokenizer':12} {'library and grammar':34} {'tokenizer view':>15} {'compile':>10} {'mask/token':>11}")
    for name, row in results.items():
        for library, r in row.items():
            if "missing" in r:
                print(f"{name:12} {library:34} {'not installed':>15}")
                continue
            print(
                f"{name:12} {library:34} {r['tokenizer_s'] * 1e3:>12.1f} ms {r['compile_s'] * 1e3:>7.1f} ms "
                f"{r['mask_us']:>8.0f} µs"
            )


if __name__ == "__main__":
    main()
