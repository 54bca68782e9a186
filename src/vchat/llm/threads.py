"""How many CPU threads the built-in planner decodes with: chosen from the free cores at the start of each reply.

Decoding a small model is a long chain of small matrix products; every one waits for its slowest thread, so a
thread that shares its core with another busy process stalls all of them (2 threads measured 4-5x slower than 1
on a busy 2-core machine). The count is the cores not already busy (by the 1-minute load), at least one, and only
for the reply: the visual tools keep torch's own setting.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def auto_threads(cores: int | None = None, load: float | None = None) -> int:
    """Cores left free by other work (by the 1-minute load average), at least one."""
    cores = cores or os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # not on this platform
            load = 0.0
    return max(1, min(cores, cores - int(load + 0.5)))


@contextmanager
def planner_threads(settings: Any, device: Any) -> Iterator[int]:
    """Use the planner's thread count for the block (CPU only; `planner_threads`, 0 = auto)."""
    import torch

    if not str(device).startswith("cpu"):
        yield torch.get_num_threads()
        return
    wanted = int(getattr(settings, "planner_threads", 0) or 0)
    before = torch.get_num_threads()
    threads = wanted if wanted > 0 else min(before, auto_threads())
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
