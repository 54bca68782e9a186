"""Constrained decoding of the built-in planner over a whole `vchat bench` run: a tiny random-weight Qwen3.5 (not
trained, so it has no idea of the format) writes only well-formed replies with constraints on, and with them off
writes replies that are not in the format (which the lenient parser reads as noise answers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vchat.bench.capabilities import session_classes
from vchat.bench.report import as_json, select
from vchat.bench.runner import run_suite
from vchat.bench.suite import builtin_tasks
from vchat.config import Settings
from vchat.llm.select import select_llm

pytest.importorskip("llguidance")
TASKS = select(builtin_tasks(), "no-tool,plain/caption,plain/map-canny,chain/detect-then-remove,edit/instruct")

# Tiny models: one torch thread (see conftest).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bench(folder: str, tmp_path: Path, constrain: str) -> dict[str, Any]:
    settings = Settings(
        out_dir=tmp_path / constrain, llm=f"local:{folder}", max_tokens=96, max_format_retries=1, max_steps=3
    )
    settings.runtime.device, settings.runtime.dtype = "cpu", "float32"
    settings.constrain = constrain
    model = select_llm(settings)
    assert model is not None
    return as_json(run_suite(TASKS, model, settings, session_classes()), model=model.name, tools="stand-in")


def test_constrained_replies_are_all_well_formed_and_unconstrained_ones_are_not(
    local_models: dict[str, str], tmp_path: Path
) -> None:
    on = _bench(local_models["planner"], tmp_path, "on")
    (mistakes,) = on["mistakes"]
    assert mistakes == {"format_reminders": 0, "loose_replies": 0, "invented_tools": [], "invented_handles": []}
    calls = [call for task in on["tasks"] for call in task["calls"][0]]
    assert calls  # the random model did call tools (real actions, not only answers)
    assert not [r for task in on["tasks"] for r in task["reasons"][0] if "bad input" in r or "refused" in r]

    off = _bench(local_models["planner"], tmp_path, "off")
    (mistakes,) = off["mistakes"]
    # The same model unconstrained: replies the strict format does not match (the lenient parser takes its noise
    # as answers or sends reminders); the difference is real.
    assert mistakes["loose_replies"] > 0 or mistakes["format_reminders"] > 0, mistakes
