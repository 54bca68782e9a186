"""What a ModelManager hands out and keeps per component: Parts of one call, its Outcome, and the bookkeeping."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from vchat.runtime import hub
from vchat.runtime.catalog import ComponentSpec

T = TypeVar("T")
ProgressCallback = Callable[[int, int, str], None]

# Placement modes, best first; a call runs in the first one that fits, an out-of-memory error moves one down.
MODES = ("resident", "offload", "sequential", "cpu")
DEGRADED = {
    "offload": "components swapped between CPU and {dev} memory at each call (not enough {dev} memory for all at once)",
    "sequential": "weights streamed layer by layer to {dev} (not enough {dev} memory for one component)",
    "cpu": "ran on CPU (not enough {dev} memory)",
}


@dataclass(eq=False)
class Entry:
    """One component's object and where it is: device, dtype, size, pins, recency, attached state."""

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
        """Bytes counted where the component is: its weights and the state attached to them."""
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
class Call:
    """How one call is placed: its mode, its accelerator, the components hooked for offloading."""

    mode: str = "resident"
    device: str | None = None
    hooked: list[Entry] = field(default_factory=list)


class ComponentHost(Protocol):
    """What a pipeline view needs of the manager: components locked for a call, and its view cache."""

    def use(
        self, *keys: str, tool: str | None = None, progress: ProgressCallback | None = None, allow_cpu: bool = True
    ) -> AbstractContextManager[Parts]:
        """The components loaded, placed and locked until the block ends."""
        ...

    def run(
        self,
        fn: Callable[[Parts], T],
        *keys: str,
        tool: str | None = None,
        progress: ProgressCallback | None = None,
        allow_cpu: bool = True,
    ) -> Outcome[T]:
        """`fn(parts)` with the components locked, retried once degraded after out-of-memory."""
        ...

    def bound_view(self, cache_key: tuple[Any, ...], parts: Parts, build: Callable[[], Any]) -> Any:
        """The cached pipeline over exactly these component objects."""
        ...
