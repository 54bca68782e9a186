"""Counters the ModelManager keeps: hits, misses, loads, moves, evictions and drops, with bytes and milliseconds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class Stats:
    """Cumulative counters; `copy()` before and after a call and subtract to see what one call cost."""

    hits: int = 0  # a component was already where the call needed it
    misses: int = 0  # a component had to be loaded, moved or cast first
    loads: int = 0  # read from disk into CPU memory
    load_bytes: int = 0
    load_ms: float = 0.0
    moves: int = 0  # CPU memory -> device (or a cast in place)
    move_bytes: int = 0
    move_ms: float = 0.0
    evictions: int = 0  # device -> CPU memory
    eviction_bytes: int = 0
    eviction_ms: float = 0.0
    drops: int = 0  # released from CPU memory
    drop_bytes: int = 0
    oom_retries: int = 0
    degraded_calls: int = 0
    peak_device_bytes: int = 0
    peak_host_bytes: int = 0

    @property
    def bytes_moved(self) -> int:
        """Bytes copied between devices (loads from disk not included)."""
        return self.move_bytes + self.eviction_bytes

    def copy(self) -> Stats:
        """A snapshot of the counters."""
        return dataclasses.replace(self)

    def since(self, before: Stats) -> Stats:
        """What happened between `before` and now (peaks are kept as they are)."""
        values = {}
        for item in dataclasses.fields(self):
            now = getattr(self, item.name)
            values[item.name] = now if item.name.startswith("peak_") else now - getattr(before, item.name)
        return Stats(**values)

    def summary(self) -> str:
        """One line for logs and `vchat doctor`."""
        mb = 1e6
        return (
            f"hits {self.hits}, misses {self.misses}, loads {self.loads} ({self.load_bytes / mb:.0f} MB, "
            f"{self.load_ms:.0f} ms), moves {self.moves} ({self.move_bytes / mb:.0f} MB, {self.move_ms:.0f} ms), "
            f"evictions {self.evictions} ({self.eviction_bytes / mb:.0f} MB, {self.eviction_ms:.0f} ms), "
            f"drops {self.drops} ({self.drop_bytes / mb:.0f} MB), oom retries {self.oom_retries}"
        )
