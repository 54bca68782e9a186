"""ModelManager: loads components lazily, shares them, keeps them under per-device budgets and locks what runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from vchat.errors import ModelLoadError
from vchat.runtime import hub, memory
from vchat.runtime.catalog import ComponentSpec, component
from vchat.runtime.devices import Backend, dtype_size, is_accelerator, is_oom, resolve_dtype
from vchat.runtime.parts import DEGRADED, MODES, Call, Entry, Outcome, Parts, ProgressCallback, T
from vchat.runtime.placement import Placement
from vchat.runtime.stats import Stats

if TYPE_CHECKING:
    from vchat.config import Settings, ToolPolicy
    from vchat.runtime.pipelines import SDPipelineView

# After an out-of-memory error the budget becomes this share of what was resident when it happened.
OOM_BUDGET_FACTOR = 0.85


class ModelManager(Placement):
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
        self._entries: dict[str, Entry] = {}
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
        call = Call()
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
            call = Call()
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

    def send_to_cpu(self, key: str, unless_room_for: tuple[str, ...] = ()) -> bool:
        """Move an unlocked component from its accelerator to CPU memory now, unless the device's budget also holds
        the components `unless_room_for` (loaded or not) beside what is there; True when it moved.

        For a component whose next use is far off (klein's text encoder once the prompt is encoded): least recently
        used eviction would pick whatever was used before it, such as the planner.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.pins or entry.where is None or not is_accelerator(entry.where):
                return False
            device = entry.where
            budget = self.budget(device)
            if budget is None:  # unlimited: nothing needs the room
                return False
            dtype = entry.dtype or "float32"
            need = 0
            for other in (self._entry(k) for k in unless_room_for):
                if not other.spec.weighted or other.where == device:
                    continue
                if other.obj is not None:
                    need += self._size_at(other, dtype)
                else:
                    need += memory.estimate_bytes(hub.weight_files(other.spec, other.source), dtype_size(dtype))
            if self.device_bytes(device) + need <= budget:
                return False
            self._move(entry, "cpu", entry.dtype)
            self._backend.free(device)
            return True

    def clear(self) -> None:
        """Drop every unlocked component (frees device and CPU memory)."""
        with self._lock:
            for entry in list(self._entries.values()):
                if entry.pins == 0 and entry.obj is not None:
                    self._drop(entry)
            self._free_all()

    # ----- placement ------------------------------------------------------------------------------------------

    def _entry(self, key: str) -> Entry:
        entry = self._entries.get(key)
        if entry is None:
            spec = component(key)
            entry = Entry(spec, hub.source_for(spec, self.models))
            self._entries[key] = entry
        return entry

    def _target(self, spec: ComponentSpec, tool: str | None) -> str:
        policy = self._tools.get(tool) if tool else None
        if policy is not None and policy.device:
            return self._resolve_device(policy.device)
        return spec.device or self.device

    def _acquire(
        self,
        keys: tuple[str, ...],
        tool: str | None,
        progress: ProgressCallback | None,
        floor: str,
        allow_cpu: bool,
        call: Call,
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
        entries: list[Entry],
        tool: str | None,
        progress: ProgressCallback | None,
        floor: str,
        allow_cpu: bool,
        call: Call,
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
        degraded = DEGRADED[mode].format(dev=call.device) if mode != "resident" and call.device else None
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

    def _release(self, keys: tuple[str, ...], tool: str | None, call: Call) -> None:
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

    def _after_oom(self, call: Call) -> str:
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

    def bound_view(self, cache_key: tuple[Any, ...], parts: Parts, build: Callable[[], Any]) -> Any:
        """The cached pipeline for these exact component objects, built once; rebuilt if a component was reloaded."""
        ids = tuple(id(parts[k]) for k in cache_key[-1])
        with self._lock:
            cached = self._views.get(cache_key)
            if cached is not None and cached[0] == ids:
                return cached[1]
            pipeline = build()
            self._views[cache_key] = (ids, pipeline)
            return pipeline
