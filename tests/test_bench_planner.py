"""The bench against the built-in planner: a tiny random Qwen3.5 from the zoo, in-process (a low score is expected)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vchat.bench.capabilities import session_classes
from vchat.bench.report import as_json, select
from vchat.bench.runner import run_suite
from vchat.bench.suite import builtin_tasks
from vchat.config import Settings
from vchat.llm.select import select_llm

pytest.importorskip("vchat.llm.local", reason="the built-in planner is not in this tree yet")

TASKS = select(builtin_tasks(), "no-tool,plain/caption,plain/map-canny,chain/detect-then-remove")


# Tiny models: one torch thread (see conftest).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_bench_runs_against_the_builtin_planner(local_models: dict[str, str], tmp_path: Path) -> None:
    settings = Settings(
        out_dir=tmp_path, llm=f"local:{local_models['planner']}", max_tokens=24, max_format_retries=1, max_steps=2
    )
    settings.runtime.device, settings.runtime.dtype = "cpu", "float32"
    model = select_llm(settings)
    assert model is not None and "built-in" in model.name
    runs = run_suite(TASKS, model, settings, session_classes())
    report = as_json(runs, model=model.name, tools="stand-in")
    assert [t["id"] for t in report["tasks"]] == [t.id for t in TASKS]
    # Every reply came from the planner itself: its own token counts, a full prompt each time.
    assert report["tokens"] == "reported"
    assert all(t["tokens_in"][0] > 500 and t["tokens_out"][0] > 0 for t in report["tasks"])
    # Random weights cannot plan: no task that needs a tool passes (the score is low, as it should be).
    needs_tool = {t.id for t in TASKS if t.needs_tool}
    assert not [t["id"] for t in report["tasks"] if t["id"] in needs_tool and t["passed"][0]]
    assert report["overall"]["pass_rate"] <= 0.5
