"""Progress bars (diffusion steps, model loading) and the spinner while the model thinks, on stderr."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.status import Status


class ProgressReporter:
    """Turns `progress(done, total, label)` calls into one rich progress bar on stderr.

    The label may change between calls (loading one model after another, then denoising);
    the bar follows it and disappears when `done` reaches `total`.
    """

    def __init__(self, console: Console, before_start: Callable[[], None] | None = None) -> None:
        self.console = console
        self.before_start = before_start  # e.g. stop the thinking spinner: one live display at a time
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int, label: str) -> None:
        """Show the bar at done/total with label; remove it when complete."""
        if total and done >= total:
            self.stop()
            return
        if self._progress is None:
            if self.before_start is not None:
                self.before_start()
            self._progress = Progress(
                TextColumn("  {task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(label, total=total or None)
        assert self._task is not None
        self._progress.update(self._task, description=label, completed=done, total=total or None)

    def stop(self) -> None:
        """Remove the bar; call before printing anything else, or the bar's clean-up erases it."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None


class Thinking:
    """A spinner while waiting for the model; stopped as soon as anything is printed."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self._status: Status | None = None

    def start(self, text: str = "thinking…") -> None:
        """Show the spinner (no-op when not a terminal)."""
        if self.enabled and self._status is None:
            self._status = self.console.status(text, spinner="dots")
            self._status.start()

    def stop(self) -> None:
        """Hide the spinner."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __enter__(self) -> Thinking:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
