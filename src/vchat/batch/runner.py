"""The batch driver: plans the work (resume included), runs it here or on Ray, keeps the manifest, sums up."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vchat.batch.inputs import SESSIONS, Item, expand, name_items
from vchat.batch.job import Job, check_job
from vchat.batch.manifest import MANIFEST_NAME, Manifest, ManifestError, Result, is_done, read_manifest
from vchat.batch.manifest_file import FolderLock
from vchat.batch.outputs import confined
from vchat.config import Settings
from vchat.errors import UsageError, VchatError
from vchat.store.files import remove_stale_temps, write_atomic
from vchat.userfiles import shown

FAIL_FAST = 8  # this many failures in a row with one same error, before any success: stop (a broken setup)


@dataclass
class Plan:
    """Every input of the batch and the ones still to do."""

    items: list[Item]
    todo: list[Item]
    out: Path
    lock: FolderLock | None = None  # held from planning to the end of run_batch: one batch per output folder

    @property
    def skipped(self) -> int:
        """Inputs a resumed batch had already done."""
        return len(self.items) - len(self.todo)


@dataclass
class Summary:
    """How the batch went: printed as one line, or as one JSON object with --json."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    out: str = ""
    manifest: str = ""
    stopped: str | None = None  # why the batch ended early (interrupted, a broken setup)
    failures: list[dict[str, str]] = field(default_factory=list)  # the first few, for the summary

    @property
    def rate(self) -> float:
        """Images finished per second in this run."""
        return (self.done + self.failed) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The --json object."""
        return {
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "remaining": self.total - self.done - self.failed - self.skipped,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.rate, 3),
            "out": self.out,
            "manifest": self.manifest,
            "stopped": self.stopped,
            "failures": self.failures,
        }

    def line(self) -> str:
        """The summary line."""
        parts = [f"{self.done} done", f"{self.failed} failed"]
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        left = self.total - self.done - self.failed - self.skipped
        if left:
            parts.append(f"{left} not run")
        if not self.done + self.failed and not left:
            # Nothing ran (a --resume with everything done): a rate would be a made-up 0.0.
            return f"batch: nothing to do, {self.skipped} already done; manifest {self.manifest}" + (
                f"; stopped: {self.stopped}" if self.stopped else ""
            )
        text = f"batch: {', '.join(parts)} in {self.seconds:.1f}s ({self.rate:.1f} images/s); manifest {self.manifest}"
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")


def plan(sources: list[str], out: Path, *, resume: bool) -> Plan:
    """Expand the inputs and, with resume, leave out what the manifest says is done."""
    out = out.expanduser().absolute()
    items = name_items(expand(sources, exclude=out))
    manifest = out / MANIFEST_NAME
    if out.exists() and not out.is_dir():
        raise VchatError(f"--out {shown(out)} is not a folder; choose a folder for the outputs")
    sessions = out / SESSIONS
    if sessions.is_symlink() or (sessions.exists() and not sessions.is_dir()):
        raise VchatError(f"{shown(sessions)} is a link or a file, not a folder; remove it or choose another --out")
    lock = FolderLock(out)
    lock.acquire()  # before reading the manifest: what another batch is still writing is not read half-done
    try:
        records = read_manifest(manifest)
        if records and not resume:
            raise VchatError(
                f"{shown(manifest)} already records a batch: add --resume to finish it, or choose another --out"
            )
        todo = [item for item in items if not (item.input in records and is_done(records[item.input], out))]
        remove_stale_temps(out)  # unfinished writes of a run that was killed
    except BaseException:
        lock.release()
        raise
    return Plan(items, todo, out, lock)


def validate(settings: Settings, job: Job) -> None:
    """Refuse a bad job before any image is read: unknown tool, bad --arg, no model."""
    from vchat.chat.calls import find_tool
    from vchat.tools.registry import all_tools

    if job.tool:
        from vchat.mcp_client.remote import external_server
        from vchat.plugins.extras import extra_tools

        plugins, _, _ = extra_tools(settings, servers=False)
        tools = {t.name: t for t in (*plugins, *all_tools())}  # a built-in name is never replaced
        if job.tool not in tools and external_server(job.tool, settings.mcp_servers):
            return  # an external server's tool: its inputs are known once the server runs (the worker checks)
        tool = find_tool(tools, job.tool)
        try:
            check_job(tool, job)
        except VchatError as exc:
            raise UsageError(str(exc)) from None
    elif not (job.prompt or "").strip():
        raise UsageError('say what to do with each image, e.g. vchat batch "make it look like winter" photos/')


def run_local(settings: Settings, job: Job, plan: Plan) -> Iterator[Result]:
    """Every result of the batch, computed in this process."""
    from vchat.batch.worker import Worker

    worker = Worker(settings, job, plan.out)
    try:
        yield from worker.run(plan.todo)
    finally:
        worker.stop.set()
        worker.close()


def run_batch(
    results: Iterator[Result],
    plan: Plan,
    *,
    on_result: Callable[[Result], None] | None = None,
) -> Summary:
    """Record each result as it comes (writing bytes a remote worker returned), and sum up."""
    summary = Summary(
        total=len(plan.items),
        skipped=plan.skipped,
        out=str(plan.out),
        manifest=str(plan.out / MANIFEST_NAME),
    )
    plan.out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(plan.out / MANIFEST_NAME)
    started = time.perf_counter()
    streak: list[str] = []
    try:
        for result in results:
            if result.blobs:
                try:
                    for relative, data in result.blobs.items():
                        write_atomic(confined(plan.out, relative), data, durable=False)
                except (OSError, VchatError) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                    result.status, result.error = "failed", f"cannot write {shown(relative)}: {reason}"
            try:
                manifest.write(result)
            except ManifestError as exc:
                # Nothing recorded from here on would be found by --resume: stop, and say so in the summary.
                summary.stopped = f"{exc}; free the space or fix the folder, then run again with --resume"
                break
            if result.status == "done":
                summary.done += 1
                streak = []
            else:
                summary.failed += 1
                if len(summary.failures) < 20:
                    summary.failures.append({"input": result.input, "error": result.error or ""})
                if not summary.done:
                    streak.append(result.error or "")
            if on_result is not None:
                on_result(result)
            if len(streak) >= FAIL_FAST and len(set(streak)) == 1:
                summary.stopped = f"the first {len(streak)} images all failed with: {streak[0]}"
                break
    except KeyboardInterrupt:
        summary.stopped = "interrupted; finish with --resume"
    finally:
        close = getattr(results, "close", None)
        try:
            if close is not None:
                close()
        finally:
            try:
                manifest.close()
            except ManifestError as exc:
                summary.stopped = summary.stopped or f"{exc}; the last records may be lost: run again with --resume"
            finally:
                if plan.lock is not None:
                    plan.lock.release()
        summary.seconds = time.perf_counter() - started
    return summary
