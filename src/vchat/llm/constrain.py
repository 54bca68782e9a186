"""Constrained decoding for the built-in planner through llguidance: a token mask per step and the tokens the
grammar forces (fast-forward), for vchat's own decoding loop.

llguidance was chosen over xgrammar and outlines (benchmarks/constrain.py measures them side by side): it works
from any Hugging Face fast tokenizer built offline, computes a mask in tens of microseconds on a CPU with no
ahead-of-time compilation of the vocabulary, embeds JSON and regex lexemes in one Lark grammar, and hands out
fast-forward tokens already tokenized. Its wheel has no dependencies (no torch or compiler at run time).
"""

from __future__ import annotations

import importlib.util
from typing import Any

_TOKENIZERS: dict[tuple[int, int], tuple[Any, Any]] = {}  # (id(tokenizer), vocab) -> (tokenizer, LLTokenizer)


def available() -> bool:
    """True when llguidance is installed."""
    return importlib.util.find_spec("llguidance") is not None


def ll_tokenizer(tokenizer: Any, vocab: int, eos: int) -> Any:
    """llguidance's view of a Hugging Face tokenizer (built once per tokenizer: ~1 s for a 250k vocabulary)."""
    import llguidance.hf

    key = (id(tokenizer), vocab)
    found = _TOKENIZERS.get(key)
    if found is None or found[0] is not tokenizer:
        _TOKENIZERS.clear()  # one planner at a time: do not keep an old tokenizer alive
        found = (tokenizer, llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab, eos_token=eos))
        _TOKENIZERS[key] = found
    return found[1]


def for_reply(
    tokenizer: Any, vocab: int, spec: Any, tools: list[dict[str, Any]] | None, mode: str, max_tokens: int
) -> Constraint | None:
    """The matcher for one reply of the built-in planner, or None when it is not constrained.

    `spec` (vchat.llm.reply_spec.ReplySpec) is what the agent said the reply may name; `tools`, the native tool
    specs when the reply is a native one (Qwen's `<tool_call>` blocks), else None (ReAct); `mode` the `constrain`
    setting (auto and on constrain, off does not; on without llguidance is an error).
    """
    if spec is None or mode == "off":
        return None
    if not available():
        if mode == "on":
            from vchat.errors import LLMError

            raise LLMError("constrain = on needs the llguidance package: pip install llguidance")
        return None

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    if tools:
        from vchat.llm.grammar_native import native_grammar

        names = {str(t.get("function", {}).get("name", "")) for t in tools}
        grammar = native_grammar(spec, names, max_tokens, count)
    else:
        from vchat.llm.grammar import react_grammar

        grammar = react_grammar(spec, max_tokens, count)
    return Constraint(tokenizer, grammar, vocab, int(tokenizer.convert_tokens_to_ids("<|im_end|>")))


class GrammarError(ValueError):
    """The grammar did not compile (a bug in vchat's grammar builder, reported as such)."""


class Constraint:
    """One reply's matcher: which tokens may come next, what the grammar forces, whether the reply is complete."""

    def __init__(self, tokenizer: Any, grammar: str, vocab: int, eos: int) -> None:
        import llguidance

        self.vocab = vocab
        self.eos = eos
        self._matcher = llguidance.LLMatcher(
            ll_tokenizer(tokenizer, vocab, eos), llguidance.LLMatcher.grammar_from_lark(grammar), log_level=0
        )
        if self._matcher.is_error():
            raise GrammarError(self._matcher.get_error())
        self._words = (vocab + 31) // 32

    def mask(self, logits: Any) -> Any:
        """`logits` ([1, V]) with every token the grammar forbids set to -inf (in place)."""
        import numpy as np
        import torch

        bits = np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8)
        allowed = torch.from_numpy(np.unpackbits(bits, bitorder="little")[: self.vocab].view(np.bool_))
        width = logits.shape[-1]
        with torch.inference_mode():  # the logits come out of the model's inference-mode forward
            if width > self.vocab:
                logits[..., self.vocab :] = float("-inf")
            logits[..., : min(width, self.vocab)].masked_fill_(~allowed[:width].to(logits.device), float("-inf"))
        return logits

    def accept(self, token: int) -> None:
        """Advance past a sampled token (always one the mask allowed)."""
        if not self._matcher.consume_token(token):
            raise GrammarError(self._matcher.get_error() or f"token {token} refused")

    def forced(self) -> list[int]:
        """The tokens the grammar allows as the only continuation from here (possibly none), already accepted."""
        tokens = list(self._matcher.compute_ff_tokens())
        if tokens and not self._matcher.consume_tokens(tokens):
            raise GrammarError(self._matcher.get_error() or "forced tokens refused")
        return tokens

    @property
    def done(self) -> bool:
        """True when nothing but the end of the reply may follow."""
        return bool(self._matcher.is_stopped())
