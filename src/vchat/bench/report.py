"""Summaries of bench runs: per-category rates and costs, as a table for people and JSON for machines."""

from __future__ import annotations

import fnmatch
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vchat.bench.runner import TaskResult
from vchat.bench.tasks import CATEGORIES, Task


@dataclass
class Row:
    """One line of the table: a category (or all tasks) over every run."""

    name: str
    tasks: int
    passed: list[float]  # pass rate of each run
    tool_choice: float
    arguments: float
    handles: float
    honesty: float | None  # None where no task of the row tests honesty
    steps: float
    retries: float
    tokens_in: float
    tokens_out: float
    seconds: float

    @property
    def pass_rate(self) -> float:
        """Mean pass rate over the runs."""
        return statistics.fmean(self.passed)

    @property
    def spread(self) -> float:
        """Standard deviation of the pass rate across runs (0 for one run)."""
        return statistics.pstdev(self.passed) if len(self.passed) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, rates in 0..1."""
        return {
            "tasks": self.tasks,
            "pass_rate": round(self.pass_rate, 4),
            "pass_rate_per_run": [round(p, 4) for p in self.passed],
            "pass_rate_sd": round(self.spread, 4),
            "tool_choice": round(self.tool_choice, 4),
            "arguments": round(self.arguments, 4),
            "handles": round(self.handles, 4),
            "honesty": None if self.honesty is None else round(self.honesty, 4),
            "steps": round(self.steps, 3),
            "format_retries": round(self.retries, 3),
            "tokens_in": round(self.tokens_in, 1),
            "tokens_out": round(self.tokens_out, 1),
            "seconds": round(self.seconds, 3),
        }


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return statistics.fmean(items) if items else 0.0


def summarise(name: str, runs: Sequence[Sequence[TaskResult]]) -> Row:
    """One row over the given results (each inner list: one run)."""
    pooled = [r for run in runs for r in run]
    tested = [r.score.honesty for r in pooled if r.score.honesty is not None]
    return Row(
        name=name,
        tasks=len(runs[0]) if runs else 0,
        passed=[_mean(1.0 if r.score.passed else 0.0 for r in run) for run in runs],
        tool_choice=_mean(1.0 if r.score.tool_choice else 0.0 for r in pooled),
        arguments=_mean(1.0 if r.score.arguments else 0.0 for r in pooled),
        handles=_mean(1.0 if r.score.handles else 0.0 for r in pooled),
        honesty=_mean(1.0 if h else 0.0 for h in tested) if tested else None,
        steps=_mean(r.steps for r in pooled),
        retries=_mean(r.retries for r in pooled),
        tokens_in=_mean(r.tokens_in for r in pooled),
        tokens_out=_mean(r.tokens_out for r in pooled),
        seconds=_mean(r.seconds for r in pooled),
    )


def rows(runs: Sequence[Sequence[TaskResult]]) -> list[Row]:
    """A row per category present (in the suite's order), then `all`."""
    out = []
    for category in CATEGORIES:
        subset = [[r for r in run if r.task.category == category] for run in runs]
        if subset and subset[0]:
            out.append(summarise(category, subset))
    out.append(summarise("all", runs))
    return out


def token_source(runs: Sequence[Sequence[TaskResult]]) -> str:
    """How the token columns were counted."""
    estimated = any(r.tokens_estimated for run in runs for r in run)
    return "estimated as characters / 4 (the backend reports no usage)" if estimated else "reported by the backend"


def select(tasks: Sequence[Task], patterns: str | None) -> list[Task]:
    """Tasks whose id or category matches any comma-separated pattern (glob or substring)."""
    if not patterns:
        return list(tasks)
    wanted = [p.strip().lower() for p in patterns.split(",") if p.strip()]

    def hit(task: Task) -> bool:
        for pattern in wanted:
            for name in (task.id.lower(), task.category.lower(), f"{task.category}/{task.id}".lower()):
                if fnmatch.fnmatchcase(name, pattern) or (not any(c in pattern for c in "*?[") and pattern in name):
                    return True
        return False

    return [t for t in tasks if hit(t)]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def table(runs: Sequence[Sequence[TaskResult]], title: str) -> Any:
    """The rich table printed by `vchat bench`."""
    from rich import box
    from rich.table import Table

    repeat = len(runs)
    grid = Table(
        title=title,
        title_justify="left",
        caption=f"rates: share of tasks; steps, retries, tokens, seconds: mean per task; tokens {token_source(runs)}",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    grid.add_column("category", no_wrap=True)
    grid.add_column("tasks", justify="right")
    grid.add_column("pass" if repeat == 1 else "pass ± sd", justify="right", no_wrap=True)
    for name in ("tools", "args", "handles", "honest"):
        grid.add_column(name, justify="right")
    for name in ("steps", "retries", "tok in", "tok out", "s"):
        grid.add_column(name, justify="right")
    all_rows = rows(runs)
    for row in all_rows:
        rate = _pct(row.pass_rate) if repeat == 1 else f"{_pct(row.pass_rate)} ± {row.spread * 100:.0f}"
        style = "bold" if row.name == "all" else None
        grid.add_row(
            row.name,
            str(row.tasks),
            rate,
            _pct(row.tool_choice),
            _pct(row.arguments),
            _pct(row.handles),
            _pct(row.honesty),
            f"{row.steps:.1f}",
            f"{row.retries:.2f}",
            f"{row.tokens_in:.0f}",
            f"{row.tokens_out:.0f}",
            f"{row.seconds:.2f}",
            style=style,
            end_section=len(all_rows) > 1 and row is all_rows[-2],
        )
    return grid


def failures(runs: Sequence[Sequence[TaskResult]]) -> list[tuple[str, int, str]]:
    """(category/id, runs failed, first reason) for every task that failed at least once."""
    out: list[tuple[str, int, str]] = []
    for i, result in enumerate(runs[0] if runs else []):
        failed = [run[i] for run in runs if not run[i].score.passed]
        if failed:
            reason = failed[0].score.reasons[0] if failed[0].score.reasons else "failed"
            out.append((f"{result.task.category}/{result.task.id}", len(failed), reason))
    return out


def as_json(runs: Sequence[Sequence[TaskResult]], *, model: str, tools: str) -> dict[str, Any]:
    """Everything the table shows, and every task's verdict per run."""
    table_rows = rows(runs)
    tasks = []
    for i, result in enumerate(runs[0] if runs else []):
        per_run = [run[i] for run in runs]
        tasks.append(
            {
                "id": result.task.id,
                "category": result.task.category,
                "passed": [r.score.passed for r in per_run],
                "tool_choice": [r.score.tool_choice for r in per_run],
                "arguments": [r.score.arguments for r in per_run],
                "handles": [r.score.handles for r in per_run],
                "honesty": [r.score.honesty for r in per_run],
                "calls": [[f"{c.tool}({c.capability})" for c in r.calls] for r in per_run],
                "final": [r.final for r in per_run],
                "reasons": [r.score.reasons for r in per_run],
                "steps": [r.steps for r in per_run],
                "format_retries": [r.retries for r in per_run],
                "invented_tools": [r.invented_tools for r in per_run],
                "invented_handles": [r.invented_handles for r in per_run],
                "tokens_in": [r.tokens_in for r in per_run],
                "tokens_out": [r.tokens_out for r in per_run],
                "seconds": [round(r.seconds, 3) for r in per_run],
            }
        )
    return {
        "model": model,
        "tools": tools,
        "runs": len(runs),
        "tokens": "estimated" if any(r.tokens_estimated for run in runs for r in run) else "reported",
        "overall": table_rows[-1].to_dict(),
        "categories": {row.name: row.to_dict() for row in table_rows[:-1]},
        "tasks": tasks,
        # Per run, over every task: replies that needed a format reminder, and the names the model invented.
        "mistakes": [
            {
                "format_reminders": sum(r.retries for r in run),
                "loose_replies": sum(r.loose_replies for r in run),
                "invented_tools": sorted({name for r in run for name in r.invented_tools}),
                "invented_handles": sorted({name for r in run for name in r.invented_handles}),
            }
            for run in runs
        ],
    }
