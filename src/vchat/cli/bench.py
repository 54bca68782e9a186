"""`vchat bench`: how well the configured language model drives the tools, as a table or JSON."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vchat.cli.common import fail
from vchat.cli.options import BaseUrlOpt, ConfigOpt, LlmOpt, ModelOpt, TierOpt
from vchat.errors import VchatError
from vchat.ui.safe import safe_json

if TYPE_CHECKING:
    from rich.console import Console

    from vchat.bench.runner import Planner, TaskResult
    from vchat.bench.tasks import Task
    from vchat.config import Settings
    from vchat.tools.base import Tool


def bench(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    filter_: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-k",
            metavar="PATTERNS",
            help="Only tasks whose id or category matches (comma-separated, globs).",
        ),
    ] = None,
    repeat: Annotated[
        int, typer.Option("--repeat", "-n", min=1, max=100, metavar="N", help="Run each task N times.")
    ] = 1,
    list_: Annotated[bool, typer.Option("--list", help="List the tasks and exit.")] = False,
    real_tools: Annotated[
        bool, typer.Option("--real-tools", help="Run the real tools (weights, GPU) instead of fast stand-ins.")
    ] = False,
    calibrate: Annotated[
        bool,
        typer.Option("--calibrate", help="Score the three calibration planners instead of a model (scale check)."),
    ] = False,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    llm: LlmOpt = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", metavar="N", help="Most tool calls per task (default 8).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every failed task and why.")] = False,
    tier: TierOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Measure how well the configured model drives the tools: a built-in suite of tasks, scored."""
    try:
        code = _bench(
            as_json,
            filter_,
            repeat,
            list_,
            real_tools,
            calibrate,
            verbose,
            {"model": model, "base_url": base_url, "llm": llm, "max_steps": max_steps, "tier": tier},
            config,
        )
    except VchatError as exc:
        if as_json:  # a script reading stdout hears of the failure too
            sys.stdout.write(safe_json({"error": str(exc)}) + "\n")
        fail(str(exc))
    raise typer.Exit(code)


def _bench(
    as_json: bool,
    patterns: str | None,
    repeat: int,
    list_only: bool,
    real: bool,
    calibrate: bool,
    verbose: bool,
    flags: dict[str, object],
    config: Path | None,
) -> int:
    from rich.console import Console

    from vchat.bench.report import select
    from vchat.bench.suite import builtin_tasks
    from vchat.config import load_settings

    tasks = select(builtin_tasks(), patterns)
    if not tasks:
        raise VchatError(f"no task matches --filter {patterns!r}; `vchat bench --list` shows them")
    # Piped output is read by people too: do not squeeze the table to the default 80 columns.
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
    if list_only:
        _list(out, tasks, as_json)
        return 0
    settings = load_settings({k: v for k, v in flags.items() if v is not None}, config_path=config)
    from vchat.bench.capabilities import session_classes

    classes = session_classes()
    planners = _calibration(classes) if calibrate else [_model(settings)]
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    reports = []
    for name, planner in planners:
        runs = _run(err, name, tasks, planner, settings, classes, real, repeat)
        reports.append((name, runs))
    tools = "real" if real else "stand-in"
    if as_json:
        from vchat.bench.report import as_json as to_json

        data = [to_json(runs, model=name, tools=tools) for name, runs in reports]
        # Model replies reach this JSON: C1 controls and bidi overrides are escaped, as `run --json` does.
        sys.stdout.write(safe_json(data[0] if len(data) == 1 else data) + "\n")
        return 0
    with out.capture() as captured:
        _print_reports(out, reports, len(tasks), repeat, tools, verbose)
    # Piped output: no trailing padding on every line.
    text = captured.get()
    sys.stdout.write(text if sys.stdout.isatty() else "\n".join(line.rstrip() for line in text.splitlines()) + "\n")
    return 0


def _print_reports(
    out: Console,
    reports: list[tuple[str, list[list[TaskResult]]]],
    count: int,
    repeat: int,
    tools: str,
    verbose: bool,
) -> None:
    from vchat.bench.report import failures, table

    for name, runs in reports:
        title = f"vchat bench · {name} · {count} tasks{f' × {repeat} runs' if repeat > 1 else ''} · {tools} tools"
        out.print(table(runs, title))
        failed = failures(runs)
        if verbose:
            for task_id, times_failed, reason in failed:
                times = f" ({times_failed}/{repeat} runs)" if repeat > 1 else ""
                out.print(f"  [red]✗[/] {task_id}{times}: {reason}")
        elif failed:
            out.print(f"[dim]{len(failed)} task(s) failed; --verbose says why[/]")


def _model(settings: Settings) -> tuple[str, Planner]:
    from vchat.llm.select import connect_hint, select_llm

    model = select_llm(settings)
    if model is None:
        raise VchatError(f"no language model to measure; {connect_hint()} (or try --calibrate)")
    return model.name, model


def _calibration(classes: Sequence[type[Tool]]) -> list[tuple[str, Planner]]:
    from vchat.bench.planners import AnswerAtOnce, RandomTool, reference_planner

    return [
        ("reference plans", lambda task: reference_planner(task, classes)),
        ("answer at once", AnswerAtOnce()),
        ("random tool", lambda task: RandomTool(classes, seed=sum(map(ord, task.id)))),
    ]


def _run(
    console: Console,
    name: str,
    tasks: Sequence[Task],
    planner: Planner,
    settings: Settings,
    classes: Sequence[type[Tool]],
    real: bool,
    repeat: int,
) -> list[list[TaskResult]]:
    from vchat.bench.runner import run_suite

    total = len(tasks) * repeat
    done = 0

    def progress(index: int, result: TaskResult) -> None:
        nonlocal done
        done += 1
        if console.is_terminal:
            mark = "[green]✓[/]" if result.score.passed else "[red]✗[/]"
            console.print(
                f"[dim]{name} {done}/{total}[/] {mark} {result.task.category}/{result.task.id} "
                f"[dim]{result.seconds:.1f}s[/]"
            )

    return run_suite(tasks, planner, settings, classes, real=real, repeat=repeat, on_result=progress)


def _list(console: Console, tasks: Sequence[Task], as_json: bool) -> None:
    if as_json:
        data = [
            {
                "id": t.id,
                "category": t.category,
                "prompt": t.prompt,
                "images": [s.file for s in t.scenes],
                "setup": [turn.text for turn in t.setup],
                "acceptable": [[step.capability for step in plan] for plan in t.accept],
            }
            for t in tasks
        ]
        sys.stdout.write(safe_json(data) + "\n")
        return
    from rich.markup import escape

    for t in tasks:
        plans = " | ".join(" → ".join(step.capability for step in plan) or "no tool" for plan in t.accept)
        images = f" [dim]{escape('[' + ', '.join(s.file for s in t.scenes) + ']')}[/]" if t.scenes else ""
        before = "".join(f"\n    [dim]earlier turn:[/] {escape(turn.text)}" for turn in t.setup)
        console.print(
            f"[bold]{t.category}/{t.id}[/]{images}{before}\n    {escape(t.prompt)}\n    [dim]accepts: {plans}[/]"
        )
    console.print(f"[dim]{len(tasks)} tasks[/]")
