"""The batch's progress bar on stderr: images done of total, rate, time left, failures so far."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Images per second over the last few seconds."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("  --- img/s" if speed is None else f"{speed:6.1f} img/s", style="progress.data.speed")


class BatchProgress:
    """One bar for the whole batch; nothing is drawn when stderr is not a terminal (logs stay clean)."""

    def __init__(self, console: Console, total: int, skipped: int = 0) -> None:
        self.failed = 0
        self._progress: Progress | None = None
        if not console.is_terminal or total == 0:
            return
        self._progress = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[failed]}"),
            console=console,
            transient=True,
            speed_estimate_period=10.0,
        )
        self._task = self._progress.add_task("batch", total=total + skipped, completed=skipped, failed="")

    def advance(self, ok: bool) -> None:
        """One more image finished."""
        if not ok:
            self.failed += 1
        if self._progress is not None:
            failed = f"[red]{self.failed} failed[/]" if self.failed else ""
            self._progress.update(self._task, advance=1, failed=failed)

    def __enter__(self) -> BatchProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
