"""The built-in planner's token loop: sample (under the grammar's mask when constrained), append the tokens the
grammar forces in one forward pass, stream whole characters, stop at an end token, a stop string or the cap."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vchat.errors import LLMError


@dataclass
class DecodeStats:
    """What one reply's decoding did (the benchmark's forced-token share comes from here)."""

    new_tokens: int = 0
    sampled: int = 0  # tokens picked by the sampler
    forced: int = 0  # tokens the grammar forced, appended without sampling
    forwards: int = 0  # forward passes during decoding (fewer than new tokens when tokens were forced)
    first_token_s: float = 0.0
    finish: str = "stop"  # stop | length
    fed: int = 0  # generated tokens whose state the cache holds (all but a last one never fed back)


def decode(
    logits: Any,
    forward: Callable[[list[int]], Any],
    *,
    tokenizer: Any,
    ends: set[int],
    sampler: Sampler,
    stops: list[str],
    max_tokens: int,
    constraint: Any = None,
    fast_forward: bool = True,
    cancelled: Callable[[], bool] = lambda: False,
    deadline: float | None = None,
    started: float | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[str]:
    """Stream a reply from the logits after the prompt; `forward(tokens)` feeds tokens and returns the next logits.

    With a `constraint` (vchat.llm.constrain.Constraint) every sampled token is one the grammar allows, and where
    the grammar allows one continuation only, those tokens are fed in the same forward pass as the sampled one
    (`fast_forward`; off, they are still forced, but one forward each, which the tests compare against).
    """
    stats = stats if stats is not None else DecodeStats()
    started = time.perf_counter() if started is None else started
    text = TextStream(tokenizer, stops)
    # Tokens decided but not yet fed to the model: a sampled one and those the grammar forces after it.
    queue: list[tuple[int, bool]] = [(t, True) for t in constraint.forced()] if constraint is not None else []
    while True:
        if cancelled():
            return
        if deadline is not None and time.perf_counter() > deadline:
            raise LLMError("built-in planner: the reply took longer than reply_deadline")
        if not queue:
            if constraint is not None:
                constraint.mask(logits)
            token = sampler.pick(logits)
            if token in ends:
                break
            queue.append((token, False))
            if constraint is not None:
                constraint.accept(token)
                queue.extend((t, True) for t in constraint.forced())
        take = queue if fast_forward else queue[:1]
        queue = queue[len(take) :]
        batch: list[int] = []
        stop = False
        for token, forced in take:
            if stats.new_tokens >= max_tokens:
                stats.finish = "length"  # the cap and no end token: the reply was cut
                stop = True
                break
            if not stats.new_tokens:
                stats.first_token_s = time.perf_counter() - started
            stats.new_tokens += 1
            stats.forced += forced
            stats.sampled += not forced
            batch.append(token)
            piece, hit = text.add(token)
            if piece:
                yield piece
            if hit:
                stop = True
                break
        if stop or (constraint is not None and not queue and constraint.done):
            break
        logits = forward(batch)
        stats.forwards += 1
        stats.fed = stats.new_tokens
    tail = text.flush()
    if tail:
        yield tail


def end_ids(tokenizer: Any, model: Any) -> set[int]:
    """Token ids that end a reply: the chat end-of-turn token and whatever the configs call end of sequence."""
    ends: set[int] = set()
    for token in ("<|im_end|>", "<|endoftext|>"):
        found = tokenizer.convert_tokens_to_ids(token)
        if isinstance(found, int) and found != tokenizer.unk_token_id and found >= 0:
            ends.add(found)
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ends.add(source)
        elif isinstance(source, list):
            ends.update(int(i) for i in source)
    return ends


class Sampler:
    """Greedy at temperature 0 (deterministic); otherwise temperature and nucleus (top-p) sampling."""

    def __init__(self, temperature: float, top_p: float) -> None:
        self.temperature = temperature
        self.top_p = top_p

    def pick(self, logits: Any) -> int:
        """The next token from logits [1, V] (masked tokens are -inf and never picked)."""
        import torch

        if self.temperature <= 0:
            return int(logits[0].argmax())
        probs = torch.softmax(logits[0].float() / self.temperature, dim=-1)
        if self.top_p < 1:
            ordered, order = probs.sort(descending=True)
            keep = ordered.cumsum(0) - ordered < self.top_p  # always keeps the most likely token
            probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
        return int(torch.multinomial(probs, 1))


class TextStream:
    """Turns tokens into text deltas: whole characters only, cut at the first stop string, holding back only a
    tail that could still become one."""

    def __init__(self, tokenizer: Any, stops: list[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.ids: list[int] = []
        self.sent = 0  # characters of the decoded text already yielded
        self.stopped = False

    def add(self, token: int) -> tuple[str, bool]:
        """(the new text safe to show, whether a stop string was reached)."""
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return "", False  # half of a multi-byte character: wait for the rest
        cut = min((i for i in (text.find(s, max(0, self.sent - len(s))) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            piece = text[self.sent : cut]
            self.sent = cut
            self.stopped = True
            return piece, True
        hold = 0
        for n in range(min(len(text) - self.sent, max((len(s) for s in self.stops), default=1) - 1), 0, -1):
            if any(s.startswith(text[-n:]) for s in self.stops):
                hold = n
                break
        end = len(text) - hold
        piece = text[self.sent : end]
        self.sent = max(self.sent, end)
        return piece, False

    def flush(self) -> str:
        """The held-back tail once the reply ended without reaching a stop string."""
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).rstrip("\ufffd")
        piece = text[self.sent :]
        self.sent = len(text)
        return piece
