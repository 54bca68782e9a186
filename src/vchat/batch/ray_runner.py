"""`--ray`: the same batch on a Ray cluster: shards to one long-lived actor per worker, manifest kept by the driver.

Ray's own primitives do the work: actors hold a Worker (tools and model runtime, loaded once,
a GPU each where the cluster has them), an ActorPool hands shards to idle actors, and an
actor that dies (its process or its node) is restarted by Ray, on another node if need be,
and its shard retried there (`max_restarts` / `max_task_retries`). The driver writes the
manifest; outputs are written by the actors straight into the output folder when they can
see it (shared storage), else returned as PNG bytes and written by the driver.
"""

from __future__ import annotations

import gc
import math
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vchat.batch.inputs import Item
from vchat.batch.job import Job
from vchat.batch.manifest import Result
from vchat.batch.runner import Plan
from vchat.config import Settings
from vchat.errors import VchatError

RESTARTS = 3  # an actor may die this many times (each retry of its shard happens on the restarted actor)
# Send inputs and outputs through Ray's object store even when the workers share the output folder.
SHIP_BYTES_ENV = "VCHAT_RAY_SHIP_BYTES"
# Tests: the driver passes this marker path to its actors; the first shard run creates it and kills its actor.
CRASH_ONCE_ENV = "VCHAT_BATCH_CRASH_ONCE"


class BatchActor:
    """One per Ray worker: a Worker kept for the whole batch, so models load once per actor."""

    def __init__(self, settings: Settings, job: Job, out: str, emit_bytes: bool, crash_marker: str | None) -> None:
        import ray

        from vchat.batch.worker import Worker

        name = f"{ray.util.get_node_ip_address()}:{os.getpid()}"
        self.worker = Worker(settings, job, Path(out), emit_bytes=emit_bytes, name=name)
        self.crash_marker = crash_marker
        gc.freeze()  # this process is the actor's own: see cli_batch for why

    def sees(self, path: str, size: int) -> bool:
        """Whether this node sees a file the driver wrote (the output folder is shared storage)."""
        try:
            return os.path.getsize(path) == size
        except OSError:
            return False

    def run(self, items: list[Item], data: dict[str, bytes]) -> list[Result]:
        """Process one shard; per-image failures are results, never exceptions."""
        marker = self.crash_marker
        if marker and not os.path.exists(marker):
            Path(marker).write_text("crashed once")
            os._exit(1)  # a worker dying mid-shard: Ray restarts the actor and retries the shard
        return list(self.worker.run(items, data))


def connect(address: str | None) -> None:
    """`auto`: the cluster `ray start` made on this machine, else a new local one; `local`: a new one; else ADDRESS."""
    try:
        import ray
    except ImportError:
        raise VchatError("--ray needs Ray in this environment: pip install 'ray>=2.9'") from None
    if ray.is_initialized():
        return
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
    if address in (None, "", "auto"):
        try:
            ray.init(address="auto", **quiet)
            return
        except ConnectionError:
            pass
        address = "local"
    try:
        if address == "local":
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VchatError(f"cannot reach the Ray cluster at {address}: {detail}") from None


def _worker_count(requested: int | None, todo: int) -> tuple[int, bool]:
    import ray

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    # Default: one actor per GPU, else one per CPU (each actor takes one).
    count = requested if requested is not None else gpus or max(1, int(resources.get("CPU", 1)))
    return max(1, min(count, todo)), gpus > 0


def _shards(items: list[Item], workers: int) -> list[list[Item]]:
    # Several shards per actor: a slow or restarted actor holds back little, and progress moves often.
    size = max(1, min(64, math.ceil(len(items) / (workers * 4))))
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_ray(settings: Settings, job: Job, plan: Plan, address: str | None, workers: int | None) -> Iterator[Result]:
    """Every result of the batch, computed by actors on the cluster."""
    if not plan.todo:
        return
    connect(address)
    import ray
    from ray.util import ActorPool

    count, gpus = _worker_count(workers, len(plan.todo))
    remote: Any = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=RESTARTS, max_task_retries=RESTARTS)(
        BatchActor
    )
    crash = os.environ.get(CRASH_ONCE_ENV) or None
    probe = plan.out / f".vchat-probe-{secrets.token_hex(4)}"
    plan.out.mkdir(parents=True, exist_ok=True)
    probe.write_bytes(b"vchat")
    try:
        first: Any = remote.remote(settings, job, str(plan.out), False, crash)
        shared = (
            os.environ.get(SHIP_BYTES_ENV) != "1"
            and bool(ray.get(first.sees.remote(str(probe), 5)))
            and bool(
                ray.get(first.sees.remote(plan.todo[0].input, os.path.getsize(plan.todo[0].input)))
                if os.path.exists(plan.todo[0].input)
                else False
            )
        )
    finally:
        probe.unlink(missing_ok=True)
    if shared:
        actors = [first, *(remote.remote(settings, job, str(plan.out), False, crash) for _ in range(count - 1))]
    else:  # no shared storage: inputs travel as bytes, outputs come back as bytes
        ray.kill(first)
        actors = [remote.remote(settings, job, str(plan.out), True, crash) for _ in range(count)]

    def submit(actor: Any, shard: list[Item]) -> Any:
        # Read lazily, when an actor is free for the shard: the driver never holds the whole batch.
        data = {} if shared else {item.input: _read(item.input) for item in shard}
        return actor.run.remote(shard, {k: v for k, v in data.items() if v is not None})

    pool = ActorPool(actors)
    shards = _shards(plan.todo, len(actors))
    for shard in shards:
        pool.submit(submit, shard)
    reported: set[str] = set()
    try:
        while pool.has_next():
            try:
                batch = pool.get_next_unordered()
            except ray.exceptions.RayError as exc:  # an actor died more often than Ray may restart it
                lost = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                yield from _lost(plan.todo, reported, lost)
                return
            for result in batch:
                reported.add(result.input)
                yield result
    finally:
        for actor in actors:
            ray.kill(actor)


def _lost(todo: list[Item], reported: set[str], why: str) -> Iterator[Result]:
    # ActorPool does not say which shard was lost: every unreported image is marked, and --resume redoes it.
    for item in todo:
        if item.input not in reported:
            yield Result(item.input, "failed", error=f"lost with its Ray worker ({why}); run again with --resume")


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None  # the worker then reports the file as unreadable, like a local run
