"""Where a ModelManager's components sit: placing, moving, evicting, dropping, loading and offload hooks."""

from __future__ import annotations

import threading
import time
from typing import Any

from vchat.runtime import hub, memory, offload
from vchat.runtime.devices import Backend, dtype_size, is_accelerator
from vchat.runtime.loading import check_available, load_component
from vchat.runtime.parts import Call, Entry
from vchat.runtime.stats import Stats


class Placement:
    """The manager's bookkeeping of components across devices; every method runs under the manager's lock."""

    stats: Stats
    _backend: Backend
    _entries: dict[str, Entry]
    _budgets: dict[str, int | None]
    _views: dict[tuple[Any, ...], tuple[tuple[int, ...], Any]]
    _lock: threading.RLock
    _tick: int

    def budget(self, device: str) -> int | None:
        """Bytes of weights allowed on a device; the manager works it out from its settings."""
        raise NotImplementedError

    def device_bytes(self, device: str) -> int:
        """Bytes of weights (and state attached to them) now on a device ("cpu": in RAM)."""
        return sum(e.held for e in self._entries.values() if e.where == device)

    def _touch(self, entry: Entry) -> None:
        self._tick += 1
        entry.tick = self._tick

    def _size_at(self, entry: Entry, dtype: str) -> int:
        if entry.dtype is None or not entry.spec.fp16_safe:
            return entry.nbytes
        return entry.nbytes * dtype_size(dtype) // dtype_size(entry.dtype)

    def _plan(self, dev: str, group: list[Entry], dtypes: dict[str, str]) -> str:
        budget = self.budget(dev)
        if budget is None:
            return "resident"
        sizes = [self._size_at(e, dtypes[e.spec.key]) for e in group]
        held = sum(e.held for e in self._entries.values() if e.where == dev and e.pins > 0 and e not in group)
        # State attached to a member already on this device stays with it.
        sizes = [s + (e.state_bytes if e.where == dev else 0) for s, e in zip(sizes, group, strict=True)]
        room = budget - held
        if sum(sizes) <= room:
            return "resident"
        import torch

        if not all(isinstance(e.obj, torch.nn.Module) for e in group):
            return "cpu"
        if max(sizes) <= room:
            return "offload"
        return "sequential" if all(e.spec.streamable for e in group) else "cpu"

    def _place_at(self, entry: Entry, where: str, dtype: str) -> bool:
        """Put a loaded component on `where` in `dtype`, making room first; False when it was already there."""
        if entry.where == where and entry.dtype == dtype:
            return False
        size = self._size_at(entry, dtype)
        if is_accelerator(where):
            self._make_room(where, size)
        elif entry.where != "cpu":
            self._trim_host(size)
        self._move(entry, where, dtype)
        return True

    def _release_state(self, entry: Entry) -> None:
        release, entry.release, entry.state_bytes = entry.release, None, 0
        if release is not None:
            release()

    def _move(self, entry: Entry, where: str, dtype: str | None) -> None:
        started = time.perf_counter()
        leaving = entry.where
        if where != leaving or (dtype is not None and dtype != entry.dtype):
            self._release_state(entry)
        self._backend.move(entry.obj, where, dtype)
        elapsed = (time.perf_counter() - started) * 1000
        entry.nbytes = memory.module_bytes(entry.obj)
        entry.where = where
        entry.dtype = dtype or entry.dtype
        if is_accelerator(leaving or "cpu") and not is_accelerator(where):
            self.stats.evictions += 1
            self.stats.eviction_bytes += entry.nbytes
            self.stats.eviction_ms += elapsed
        else:
            self.stats.moves += 1
            self.stats.move_bytes += entry.nbytes
            self.stats.move_ms += elapsed
        self._note_peaks(where)

    def _note_peaks(self, where: str) -> None:
        if is_accelerator(where):
            self.stats.peak_device_bytes = max(self.stats.peak_device_bytes, self.device_bytes(where))
        self.stats.peak_host_bytes = max(self.stats.peak_host_bytes, self.device_bytes("cpu"))

    def _victims(self, where: str) -> list[Entry]:
        # Least recently used first, and the shared SD core after everything else.
        free = [e for e in self._entries.values() if e.where == where and (e.pins == 0 or e.swappable)]
        return sorted(free, key=lambda e: (e.spec.core, e.tick))

    def _make_room(self, dev: str, need: int, keep: Entry | None = None) -> None:
        budget = self.budget(dev)
        if budget is None:
            return
        evicted = False
        for victim in self._victims(dev):
            if self.device_bytes(dev) + need <= budget:
                break
            if victim is keep:
                continue
            self._move(victim, "cpu", victim.dtype)
            evicted = True
        if evicted:
            # RAM is trimmed once the call is placed, not here: the component being placed may still sit in RAM.
            self._backend.free(dev)

    def _trim_host(self, need: int) -> None:
        budget = self.budget("cpu")
        if budget is None:
            return
        dropped = False
        for victim in self._victims("cpu"):
            if self.device_bytes("cpu") + need <= budget:
                break
            if victim.swappable:
                continue
            self._drop(victim)
            dropped = True
        if dropped:
            self._backend.free("cpu")

    def _drop(self, entry: Entry) -> None:
        self._release_state(entry)
        if entry.where is not None and entry.spec.weighted:
            self.stats.drops += 1
            self.stats.drop_bytes += entry.nbytes
        entry.obj = None
        entry.where = None
        entry.dtype = None
        entry.nbytes = 0
        # Cached pipeline views hold the object too; forget them so the memory is really released.
        for view_key in [k for k in self._views if entry.spec.key in k[-1]]:
            del self._views[view_key]

    def _free_all(self) -> None:
        for dev in list(self._budgets):
            self._backend.free(dev)

    def _load(self, entry: Entry, dtype: str | None) -> None:
        spec = entry.spec
        if spec.weighted:
            check_available(spec, entry.source)  # before the size estimate reads the weight files' headers
            files = hub.weight_files(spec, entry.source)
            self._trim_host(memory.estimate_bytes(files, dtype_size(dtype or "float32")))
        started = time.perf_counter()
        entry.obj = load_component(spec, entry.source, dtype)
        elapsed = (time.perf_counter() - started) * 1000
        entry.where = "cpu"
        entry.dtype = dtype if spec.weighted and spec.fp16_safe else ("float32" if spec.weighted else None)
        entry.nbytes = memory.module_bytes(entry.obj) if spec.weighted else 0
        self.stats.loads += 1
        self.stats.load_bytes += entry.nbytes
        self.stats.load_ms += elapsed
        self._note_peaks("cpu")

    # ----- degraded modes -------------------------------------------------------------------------------------

    def _hook(self, entry: Entry, dev: str, dtype: str, mode: str, call: Call) -> None:
        if entry.where != "cpu" and entry.where != dev:
            self._move(entry, "cpu", entry.dtype)
        if entry.dtype != dtype:
            self._move(entry, entry.where or "cpu", dtype)
        torch_dev = self._backend.torch_device(dev)
        if mode == "offload":
            entry.swappable = True
            offload.attach_swap_hook(entry.obj, torch_dev, lambda: self._swap_in(entry, dev, dtype))
        else:
            if entry.where == dev:
                self._move(entry, "cpu", dtype)
            if entry.spec.group_offload:
                offload.attach_group_offload(entry.obj, torch_dev)
            else:
                offload.attach_sequential(entry.obj, torch_dev)
        call.hooked.append(entry)

    def _swap_in(self, entry: Entry, dev: str, dtype: str) -> None:
        with self._lock:
            self._touch(entry)
            if entry.where == dev:
                self.stats.hits += 1
                return
            self.stats.misses += 1
            self._make_room(dev, self._size_at(entry, dtype), keep=entry)
            self._move(entry, dev, dtype)

    def _unhook(self, call: Call) -> None:
        for entry in call.hooked:
            offload.detach(entry.obj)
            entry.swappable = False
        call.hooked.clear()
