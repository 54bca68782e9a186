"""ModelManager: loads components lazily, shares them, keeps them under per-device budgets and locks what runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from vchat.errors import ModelLoadError
from vchat.runtime import hub, memory, offload
from vchat.runtime.catalog import ComponentSpec, component
from vchat.runtime.devices import Backend, dtype_size, is_accelerator, is_oom, resolve_dtype
from vchat.runtime.loading import check_available, load_component
from vchat.runtime.stats import Stats

if TYPE_CHECKING:
    from vchat.config import Settings, ToolPolicy
    from vchat.runtime.pipelines import SDPipelineView

T = TypeVar("T")
ProgressCallback = Callable[[int, int, str], None]

# Placement modes, best first; a call runs in the first one that fits, an out-of-memory error moves one down.
MODES = ("resident", "offload", "sequential", "cpu")
_DEGRADED = {
    "offload": "components swapped between CPU and {dev} memory at each call (not enough {dev} memory for all at once)",
    "sequential": "weights streamed layer by layer to {dev} (not enough {dev} memory for one component)",
    "cpu": "ran on CPU (not enough {dev} memory)",
}
# After an out-of-memory error the budget becomes this share of what was resident when it happened.
OOM_BUDGET_FACTOR = 0.85


@dataclass(eq=False)
class _Entry:
    spec: ComponentSpec
    source: hub.Source
    obj: Any = None
    where: str | None = None  # None: not loaded; "cpu"; or an accelerator such as "cuda:0"
    dtype: str | None = None
    nbytes: int = 0
    pins: int = 0
    swappable: bool = False  # pinned by an offload-mode call that lets its own members swap each other out
    tick: int = 0
    # State derived from the weights and kept beside them (the planner's prefix cache): counted where they are,
    # and released through `release` when they move or go (it lives on their device and is stale elsewhere).
    state_bytes: int = 0
    release: Callable[[], None] | None = None

    @property
    def held(self) -> int:
        return self.nbytes + self.state_bytes


class Parts(Mapping[str, Any]):
    """The loaded components of one `use()` call, by key, with where their inputs must go."""

    def __init__(
        self, objects: dict[str, Any], devices: dict[str, Any], dtypes: dict[str, str], mode: str, degraded: str | None
    ):
        self._objects = objects
        self._devices = devices
        self._dtypes = dtypes
        self.mode = mode
        self.degraded = degraded
        first = next(iter(devices), None)
        self.device: Any = devices[first] if first else None  # torch.device for inputs of the first weighted part
        self.dtype: str = dtypes[first] if first else "float32"

    def __getitem__(self, key: str) -> Any:
        return self._objects[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._objects)

    def __len__(self) -> int:
        return len(self._objects)

    def device_of(self, key: str) -> Any:
        """The torch device a component's inputs must be on."""
        return self._devices.get(key, self.device)

    def dtype_of(self, key: str) -> Any:
        """The torch dtype a component computes in."""
        from vchat.runtime.devices import torch_dtype

        return torch_dtype(self._dtypes.get(key, self.dtype))

    @property
    def torch_dtype(self) -> Any:
        """The torch dtype of the first weighted part (for floating inputs)."""
        from vchat.runtime.devices import torch_dtype

        return torch_dtype(self.dtype)


@dataclass
class Outcome(Generic[T]):
    """What `ModelManager.run` returns: the function's value and, if it ran degraded, why."""

    value: T
    degraded: str | None = None


@dataclass
class _Call:
    mode: str = "resident"
    device: str | None = None
    hooked: list[_Entry] = field(default_factory=list)


class ModelManager:
    """Owns every loaded component; tools ask it for components by key. Thread-safe; one tool at a time per device."""

    def __init__(
        self,
        models: Mapping[str, str] | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        vram_budget: str | int | None = "auto",
        ram_budget: str | int | None = "auto",
        tools: Mapping[str, ToolPolicy] | None = None,
        progress: ProgressCallback | None = None,
        backend: Backend | None = None,
    ):
        self.models = dict(models or {})
        self.progress = progress
        self.stats = Stats()
        self._device_setting = device
        self._dtype_setting = dtype
        self._vram_setting = memory.parse_budget(vram_budget, "vram_budget")
        self._ram_setting = memory.parse_budget(ram_budget, "ram_budget")
        self._tools = dict(tools or {})
        self._backend = backend or Backend()
        self._device: str | None = None
        self._resolved: dict[str, str] = {}
        self._budgets: dict[str, int | None] = {}
        self._entries: dict[str, _Entry] = {}
        self._views: dict[tuple[Any, ...], tuple[tuple[int, ...], Any]] = {}
        self._lock = threading.RLock()
        self._tick = 0

    @classmethod
    def from_settings(cls, settings: Settings, progress: ProgressCallback | None = None) -> ModelManager:
        """A manager for the user's settings; nothing is probed or imported until the first component is used."""
        rt = settings.runtime
        return cls(
            settings.models,
            device=rt.device,
            dtype=rt.dtype,
            vram_budget=rt.vram_budget,
            ram_budget=rt.ram_budget,
            tools=settings.tools,
            progress=progress,
        )

    # ----- devices and budgets -------------------------------------------------------------------------------

    @property
    def device(self) -> str:
        """The default compute device (resolved, and validated, on first access)."""
        if self._device is None:
            self._device = self._resolve_device(self._device_setting)
        return self._device

    def _resolve_device(self, spec: str) -> str:
        if spec not in self._resolved:
            self._resolved[spec] = self._backend.resolve_device(spec)
        return self._resolved[spec]

    def budget(self, device: str) -> int | None:
        """Bytes of weights allowed on a device ("cpu": the RAM budget); None means unlimited."""
        with self._lock:
            if device not in self._budgets:
                setting = self._vram_setting if is_accelerator(device) else self._ram_setting
                if setting == memory.AUTO:
                    free, total = self._backend.memory(device)
                    setting = memory.auto_budget(free, total, is_accelerator(device))
                self._budgets[device] = int(setting) if setting is not None else None
            return self._budgets[device]

    def set_budget(self, device: str, nbytes: int | None) -> None:
        """Change a device's budget now, evicting what no longer fits."""
        with self._lock:
            self._budgets[device] = nbytes
            if is_accelerator(device):
                self._make_room(device, 0)
            self._trim_host(0)

    def device_bytes(self, device: str) -> int:
        """Bytes of weights (and state attached to them) now on a device ("cpu": in RAM)."""
        return sum(e.held for e in self._entries.values() if e.where == device)

    def resident(self) -> dict[str, tuple[str, int]]:
        """Loaded components: key -> (where, bytes of weights and attached state)."""
        with self._lock:
            return {k: (e.where, e.held) for k, e in self._entries.items() if e.where is not None}

    def attach_state(self, key: str, nbytes: int, release: Callable[[], None]) -> None:
        """Count `nbytes` of state derived from a loaded component (e.g. a prefix cache) against the budget of the
        device the component is on, making room there; `release()` is called (and the count dropped) when the
        component moves, changes dtype or is dropped, since the state lives beside the weights. Replaces any state
        attached before; `release` must not call back into the manager."""
        with self._lock:
            entry = self._entry(key)
            if entry.where is None:
                release()
                return
            entry.state_bytes, entry.release = nbytes, release
            if is_accelerator(entry.where):
                self._make_room(entry.where, 0, keep=entry)
            else:
                self._trim_host(0)
            self._note_peaks(entry.where)

    def detach_state(self, key: str) -> None:
        """Stop counting a component's attached state (its owner freed it); `release` is not called."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.state_bytes, entry.release = 0, None

    # ----- the API for tools ---------------------------------------------------------------------------------

    @contextmanager
    def use(
        self, *keys: str, tool: str | None = None, progress: ProgressCallback | None = None, allow_cpu: bool = True
    ) -> Iterator[Parts]:
        """Load what is missing, place it, and lock it until the block ends: `with m.use("sam", …) as parts:`."""
        call = _Call()
        parts = self._acquire(keys, tool, progress, "resident", allow_cpu, call)
        try:
            yield parts
        finally:
            self._release(keys, tool, call)

    def run(
        self,
        fn: Callable[[Parts], T],
        *keys: str,
        tool: str | None = None,
        progress: ProgressCallback | None = None,
        allow_cpu: bool = True,
    ) -> Outcome[T]:
        """`fn(parts)` inside `use(*keys)`; on out-of-memory: free, lower the budget, retry once in a lower mode."""
        floor = "resident"
        for attempt in (1, 2):
            call = _Call()
            try:
                parts = self._acquire(keys, tool, progress, floor, allow_cpu, call)
                try:
                    return Outcome(fn(parts), parts.degraded)
                finally:
                    self._release(keys, tool, call)
            except Exception as exc:
                if not is_oom(exc):
                    raise
                if attempt == 2 or call.mode == "cpu" or call.device is None:
                    where = call.device or "the device"
                    raise ModelLoadError(
                        f"out of memory on {where} running {tool or ', '.join(keys)} even after retrying degraded; "
                        "lower [runtime] vram_budget or set the tool's device to cpu"
                    ) from None
            # Outside the except block, so the traceback (and the activations its frames hold) is already gone.
            floor = self._after_oom(call)
        raise AssertionError("unreachable")

    def sd_pipeline(
        self, kind: str, *, controlnet: str | None = None, tool: str | None = None, scheduler: str | None = None
    ) -> SDPipelineView:
        """A Stable Diffusion view (text2img, img2img, inpaint, pix2pix, controlnet) on the shared components."""
        from vchat.runtime.pipelines import SDPipelineView

        return SDPipelineView(self, kind, controlnet=controlnet, tool=tool, scheduler=scheduler)

    def clear(self) -> None:
        """Drop every unlocked component (frees device and CPU memory)."""
        with self._lock:
            for entry in list(self._entries.values()):
                if entry.pins == 0 and entry.obj is not None:
                    self._drop(entry)
            self._free_all()

    # ----- placement ------------------------------------------------------------------------------------------

    def _entry(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            spec = component(key)
            entry = _Entry(spec, hub.source_for(spec, self.models))
            self._entries[key] = entry
        return entry

    def _target(self, spec: ComponentSpec, tool: str | None) -> str:
        policy = self._tools.get(tool) if tool else None
        if policy is not None and policy.device:
            return self._resolve_device(policy.device)
        return spec.device or self.device

    def _touch(self, entry: _Entry) -> None:
        self._tick += 1
        entry.tick = self._tick

    def _acquire(
        self,
        keys: tuple[str, ...],
        tool: str | None,
        progress: ProgressCallback | None,
        floor: str,
        allow_cpu: bool,
        call: _Call,
    ) -> Parts:
        progress = progress or self.progress
        with self._lock:
            entries = [self._entry(key) for key in keys]
            for entry in entries:
                entry.pins += 1
            try:
                return self._place(entries, tool, progress, floor, allow_cpu, call)
            except BaseException:
                for entry in entries:
                    entry.pins -= 1
                self._unhook(call)
                raise

    def _place(
        self,
        entries: list[_Entry],
        tool: str | None,
        progress: ProgressCallback | None,
        floor: str,
        allow_cpu: bool,
        call: _Call,
    ) -> Parts:
        targets = {e.spec.key: self._target(e.spec, tool) for e in entries}
        dtypes = {
            e.spec.key: resolve_dtype(
                self._dtype_setting, targets[e.spec.key], e.spec.fp16_safe, e.spec.preferred_dtype
            )
            for e in entries
        }
        missing = [e for e in entries if e.obj is None]
        fresh = {e.spec.key for e in missing}
        for index, entry in enumerate(missing):
            if progress:
                progress(index, len(missing), f"loading {entry.spec.key}")
            self._load(entry, dtypes[entry.spec.key] if entry.spec.weighted else None)
        if missing and progress:
            progress(len(missing), len(missing), "models ready")

        weighted = [e for e in entries if e.spec.weighted]
        mode = floor
        for dev in {targets[e.spec.key] for e in weighted if is_accelerator(targets[e.spec.key])}:
            group = [e for e in weighted if targets[e.spec.key] == dev]
            planned = self._plan(dev, group, dtypes)
            if MODES.index(planned) > MODES.index(mode):
                mode = planned
            call.device = call.device or dev
        if mode == "cpu" and not allow_cpu:
            dev = call.device or self.device
            need = sum(self._size_at(e, dtypes[e.spec.key]) for e in weighted)
            raise ModelLoadError(
                f"not enough {dev} memory for {tool or ', '.join(e.spec.key for e in entries)}: needs "
                f"{memory.format_size(need)}, budget {memory.format_size(self.budget(dev))}; "
                "raise [runtime] vram_budget"
            )
        call.mode = mode
        degraded = _DEGRADED[mode].format(dev=call.device) if mode != "resident" and call.device else None
        if degraded:
            self.stats.degraded_calls += 1

        devices: dict[str, Any] = {}
        for entry in entries:
            key = entry.spec.key
            target = targets[key]
            moved = False
            if not entry.spec.weighted:
                pass
            elif mode == "cpu" or not is_accelerator(target):
                dtype = (
                    resolve_dtype(self._dtype_setting, "cpu", entry.spec.fp16_safe, entry.spec.preferred_dtype)
                    if mode == "cpu"
                    else dtypes[key]
                )
                moved = self._place_at(entry, "cpu", dtype)
                devices[key] = self._backend.torch_device("cpu")
                dtypes[key] = dtype
            elif mode == "resident":
                moved = self._place_at(entry, target, dtypes[key])
                devices[key] = self._backend.torch_device(target)
            else:
                self._hook(entry, target, dtypes[key], mode, call)
                devices[key] = self._backend.torch_device(target)
            if moved or key in fresh:
                self.stats.misses += 1
            else:
                self.stats.hits += 1
            self._touch(entry)
        self._trim_host(0)
        objects = {e.spec.key: e.obj for e in entries}
        weighted_dtypes = {k: dtypes[k] for k in devices}
        return Parts(objects, devices, weighted_dtypes, mode, degraded)

    def _size_at(self, entry: _Entry, dtype: str) -> int:
        if entry.dtype is None or not entry.spec.fp16_safe:
            return entry.nbytes
        return entry.nbytes * dtype_size(dtype) // dtype_size(entry.dtype)

    def _plan(self, dev: str, group: list[_Entry], dtypes: dict[str, str]) -> str:
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

    def _place_at(self, entry: _Entry, where: str, dtype: str) -> bool:
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

    def _release_state(self, entry: _Entry) -> None:
        release, entry.release, entry.state_bytes = entry.release, None, 0
        if release is not None:
            release()

    def _move(self, entry: _Entry, where: str, dtype: str | None) -> None:
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

    def _victims(self, where: str) -> list[_Entry]:
        # Least recently used first, and the shared SD core after everything else.
        free = [e for e in self._entries.values() if e.where == where and (e.pins == 0 or e.swappable)]
        return sorted(free, key=lambda e: (e.spec.core, e.tick))

    def _make_room(self, dev: str, need: int, keep: _Entry | None = None) -> None:
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

    def _drop(self, entry: _Entry) -> None:
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

    def _load(self, entry: _Entry, dtype: str | None) -> None:
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

    def _hook(self, entry: _Entry, dev: str, dtype: str, mode: str, call: _Call) -> None:
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
            offload.attach_sequential(entry.obj, torch_dev)
        call.hooked.append(entry)

    def _swap_in(self, entry: _Entry, dev: str, dtype: str) -> None:
        with self._lock:
            self._touch(entry)
            if entry.where == dev:
                self.stats.hits += 1
                return
            self.stats.misses += 1
            self._make_room(dev, self._size_at(entry, dtype), keep=entry)
            self._move(entry, dev, dtype)

    def _unhook(self, call: _Call) -> None:
        for entry in call.hooked:
            offload.detach(entry.obj)
            entry.swappable = False
        call.hooked.clear()

    def _release(self, keys: tuple[str, ...], tool: str | None, call: _Call) -> None:
        with self._lock:
            self._unhook(call)
            policy = self._tools.get(tool) if tool else None
            for key in keys:
                entry = self._entries[key]
                entry.pins -= 1
                if (
                    policy is not None
                    and policy.keep == "offload"
                    and entry.pins == 0
                    and is_accelerator(entry.where or "cpu")
                ):
                    self._move(entry, "cpu", entry.dtype)
            self._trim_host(0)

    def _after_oom(self, call: _Call) -> str:
        """Free, lower the failing device's budget to what fitted, and return the mode to retry in."""
        with self._lock:
            dev = call.device or self.device
            self.stats.oom_retries += 1
            resident = self.device_bytes(dev)
            budget = self.budget(dev)
            lowered = int(min(budget if budget is not None else resident, resident) * OOM_BUDGET_FACTOR)
            self._budgets[dev] = lowered
            self._make_room(dev, 0)
            self._backend.free(dev)
            return MODES[min(MODES.index(call.mode) + 1, len(MODES) - 1)]

    # ----- pipeline views (used by vchat.runtime.pipelines) -----------------------------------------------------

    def _bound_view(self, cache_key: tuple[Any, ...], parts: Parts, build: Callable[[], Any]) -> Any:
        """The cached pipeline for these exact component objects, built once; rebuilt if a component was reloaded."""
        ids = tuple(id(parts[k]) for k in cache_key[-1])
        with self._lock:
            cached = self._views.get(cache_key)
            if cached is not None and cached[0] == ids:
                return cached[1]
            pipeline = build()
            self._views[cache_key] = (ids, pipeline)
            return pipeline
