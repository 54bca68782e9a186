"""The built-in planner's speed paths change nothing the model says: an overfit tiny Qwen3.5 gives the same
greedy replies over a real turn with and without fast-forward, with and without the cross-step cache, and with
int8 weights (on by default on a CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.test_planner_turn import CALL, DONE, _overfit, _planner_folder, _turn

from helpers import write_photo
from vchat.config import Settings
from vchat.llm.local import LocalLLM
from vchat.llm.select import select_llm

pytest.importorskip("llguidance")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _replies(settings: Settings, llm: LocalLLM, photo: Path) -> tuple[list[str], list[Any]]:
    steps, _ = _turn(settings, llm, photo)
    return [step.reply or "" for step in steps if step.kind in ("action", "final")], [step.kind for step in steps]


def test_fast_forward_turn_cache_and_int8_keep_the_greedy_replies(tmp_path: Path) -> None:
    folder = _planner_folder(tmp_path / "planner")
    settings = Settings(out_dir=tmp_path / "out", llm=f"local:{folder}", max_tokens=96, max_format_retries=0)
    settings.runtime.device, settings.runtime.dtype = "cpu", "float32"
    settings.planner_int8 = "off"  # trained in place: float weights until the int8 run at the end
    llm = select_llm(settings)
    assert isinstance(llm, LocalLLM)
    photo = write_photo(tmp_path, width=64, height=48)
    _, calls = _turn(settings, llm, photo)
    _overfit(llm, [(calls[0][0], CALL)])
    _, calls = _turn(settings, llm, photo)
    _overfit(llm, [(calls[0][0], CALL), (calls[1][0], DONE)])

    reference, kinds = _replies(settings, llm, photo)
    assert kinds == ["action", "observation", "final"] and reference == [CALL, DONE]
    # Constrained, and the grammar forced part of each reply (`Action Input: {"image": "` and the like).
    assert llm.last.constrained and llm.last.forced > 0 and llm.last.forwards < llm.last.new_tokens
    # The second step started from the first step's state, not only the system prompt's.
    steps_seen: list[int] = []
    original = llm._generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        yield from original(*args, **kwargs)
        steps_seen.append(llm.last.cached_tokens)

    llm._generate = spy  # type: ignore[method-assign]
    assert _replies(settings, llm, photo)[0] == reference
    del llm._generate
    prefix = llm._prefix_cache.get_seq_length()
    assert steps_seen[0] == prefix and steps_seen[1] > prefix

    llm.fast_forward = False
    assert _replies(settings, llm, photo)[0] == reference
    assert llm.last.forwards == llm.last.new_tokens  # every token fed on its own
    llm.fast_forward = True

    llm.use_turn_cache = False
    assert _replies(settings, llm, photo)[0] == reference
    llm.use_turn_cache = True

    settings.planner_int8 = "auto"  # the default: int8 weights on a CPU
    assert _replies(settings, llm, photo)[0] == reference
    from vchat.llm.int8 import quantized

    with llm.manager.use("planner", tool="planner") as parts:
        assert quantized(parts["planner"])
