"""The built-in planner's reusable state: the system prompt's (the prefix cache, kept for the session) and the
previous step's (the turn cache: within a turn requests only append, so the next step prefills only the reply and
the observation). Attention layers keep KV, linear-attention layers a recurrent state updated in place that cannot
be cropped: each kept state is a snapshot, and a step starts from a deep copy of the longest one its tokens extend.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from vchat.llm.local_prompt import Prompt


class PlannerState:
    """Keeps at most two snapshots (system prompt, last step) and hands out a fresh cache to start a step from."""

    def __init__(self, attach: Callable[[int, Callable[[], None]], None], detach: Callable[[], None]) -> None:
        self._attach = attach  # counts bytes against the runtime's budget; the callback frees them
        self._detach = detach
        self.use_prefix = True
        self.use_turn = True
        self._prefix: tuple[tuple[Any, ...], Any] | None = None  # (key, cache after the system block)
        self._turn: tuple[tuple[Any, ...], Any, Any] | None = None  # (key, ids it covers [1, N], cache)

    @property
    def prefix_cache(self) -> Any:
        """The system prompt's state, or None."""
        return self._prefix[1] if self._prefix is not None else None

    def held(self) -> list[Any]:
        """Every state kept now."""
        return [state for state in (self.prefix_cache, self._turn[2] if self._turn else None) if state is not None]

    def forget(self) -> None:
        """Drop every snapshot (the weights moved, changed or were dropped)."""
        self._prefix, self._turn = None, None

    def reset(self) -> None:
        """Forget and stop counting the bytes (after the weights changed in place)."""
        self._detach()
        self.forget()

    def start(self, model: Any, prompt: Prompt, device: Any) -> tuple[Any, int, bool]:
        """A fresh cache for this request, how many of its tokens it covers, and whether the prefix was built."""
        import torch
        from transformers import DynamicCache

        key = _key(model, device)
        if self.use_turn and self._turn is not None and self._turn[0] == key:
            covered = self._turn[1]
            size = covered.shape[1]
            if size < prompt.ids.shape[1] and torch.equal(prompt.ids[:, :size], covered.to(prompt.ids.device)):
                with torch.inference_mode():
                    return copy.deepcopy(self._turn[2]), size, False
        size = prompt.prefix_ids.shape[1]
        if not self.use_prefix or size == 0:
            return DynamicCache(config=model.config), 0, False
        built = False
        prefix_key = (*key, prompt.prefix_text)
        if self._prefix is None or self._prefix[0] != prefix_key:
            self.reset()  # free the old state before building the new one
            cache = DynamicCache(config=model.config)
            with torch.inference_mode():
                model(
                    input_ids=prompt.prefix_ids,
                    position_ids=prompt.positions[:, :, :size],
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
            self._prefix = (prefix_key, cache)
            built = True
            self._count()
        with torch.inference_mode():
            return copy.deepcopy(self._prefix[1]), size, built

    def keep_turn(self, model: Any, device: Any, ids: Any, cache: Any) -> None:
        """Keep a snapshot of `cache`, which covers exactly `ids`, for the next step of the turn."""
        import torch

        if not self.use_turn:
            return
        self._turn = None  # the old one is freed before the copy is made
        with torch.inference_mode():
            self._turn = (_key(model, device), ids.clone(), copy.deepcopy(cache))
        self._count()

    def _count(self) -> None:
        from vchat.runtime.memory import state_bytes

        self._attach(sum(state_bytes(state) for state in self.held()), self.forget)


def _key(model: Any, device: Any) -> tuple[Any, ...]:
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    return (id(model), str(device), str(dtype))
