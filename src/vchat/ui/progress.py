"""Progress bars (diffusion steps, model loading) and the spinner while the model thinks, on stderr."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.status import Status


class ProgressReporter:
    """Turns `progress(done, total, label)` calls into rich progress bars; one bar per label."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, done: int, total: int, label: str) -> None:
        """Update (or start) the bar for label; it disappears when done reaches total."""
        if self._progress is None:
            self._progress = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        task = self._tasks.get(label)
        if task is None:
            task = self._tasks[label] = self._progress.add_task(label, total=total)
        self._progress.update(task, completed=done, total=total)
        if total and done >= total:
            self._progress.remove_task(task)
            del self._tasks[label]
            if not self._tasks:
                self.stop()

    def stop(self) -> None:
        """Remove every bar (end of a tool, or cancellation)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()


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
