"""Devices: pick CUDA, MPS or CPU and a dtype, probe memory, and move weights (torch imported lazily)."""

from __future__ import annotations

import gc
import os
from typing import Any

from vchat.errors import ConfigError

DTYPES = ("float16", "bfloat16", "float32")
_DTYPE_ALIASES = {"fp16": "float16", "half": "float16", "bf16": "bfloat16", "fp32": "float32", "float": "float32"}


def is_accelerator(device: str) -> bool:
    """True for devices with their own memory (CUDA, MPS), whose budget is the VRAM budget."""
    return device != "cpu"


def resolve_device(spec: str) -> str:
    """Turn `auto`, `cpu`, `cuda`, `cuda:N` or `mps` into a concrete device string, validating it."""
    import torch

    text = (spec or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if text == "cpu":
        return "cpu"
    if text == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device mps is not available on this machine; use device = 'auto' or 'cpu'")
        return "mps"
    if text == "cuda" or text.startswith("cuda:"):
        index_text = text.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise ConfigError(f"device {spec!r} is not valid; write cuda or cuda:N")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {spec!r} asked for but no CUDA GPU is visible; use device = 'auto' or 'cpu'")
        index = int(index_text)
        if index >= count:
            raise ConfigError(
                f"device {spec!r} does not exist: this machine has {count} CUDA device(s), 0..{count - 1}"
            )
        return f"cuda:{index}"
    raise ConfigError(f"device {spec!r} is not one of auto, cpu, cuda, cuda:N, mps")


def resolve_dtype(spec: str, device: str, fp16_safe: bool = True, preferred: str | None = None) -> str:
    """The compute dtype for a component: fp16 on accelerators, fp32 on CPU or where fp16 is unsafe.

    `preferred` (a component's own default, e.g. bf16 for the planner) wins when the setting is auto.
    """
    text = _DTYPE_ALIASES.get((spec or "auto").strip().lower(), (spec or "auto").strip().lower())
    if text not in (*DTYPES, "auto"):
        raise ConfigError(f"dtype {spec!r} is not one of auto, float16, bfloat16, float32")
    if text == "auto" and preferred is not None:
        return preferred
    if device == "cpu" or not fp16_safe:
        # Half precision on CPU is slow or unsupported for many kernels, so CPU always computes in fp32.
        return "float32"
    return "float16" if text == "auto" else text


def torch_dtype(name: str) -> Any:
    """The torch dtype object for a dtype name."""
    import torch

    return getattr(torch, name)


def dtype_size(name: str) -> int:
    """Bytes per element of a floating dtype name."""
    return 4 if name == "float32" else 2


def device_memory(device: str) -> tuple[int, int]:
    """(free, total) bytes of a device; for CPU, available and total RAM."""
    if device.startswith("cuda"):
        import torch

        free, total = torch.cuda.mem_get_info(torch.device(device))
        return int(free), int(total)
    if device == "mps":
        import torch

        total = int(torch.mps.recommended_max_memory())
        return max(0, total - int(torch.mps.driver_allocated_memory())), total
    return host_memory()


def host_memory() -> tuple[int, int]:
    """(available, total) bytes of RAM."""
    try:
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.available), int(vm.total)
    except ImportError:  # psutil comes with accelerate, but keep a fallback for trimmed installs
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(avail), int(pages)


def device_name(device: str) -> str:
    """A human name for a device, e.g. `NVIDIA H100 80GB HBM3`."""
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    if device == "mps":
        return "Apple GPU (MPS)"
    import platform

    return platform.processor() or platform.machine() or "CPU"


def is_oom(exc: BaseException) -> bool:
    """True for out-of-memory errors from CUDA, MPS or the CPU allocator."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text.lower() or "DefaultCPUAllocator: can't allocate memory" in text
    )


class Backend:
    """How weights move between devices; tests swap in a simulated accelerator with the same interface."""

    def resolve_device(self, spec: str) -> str:
        """Validate and normalise a device setting."""
        return resolve_device(spec)

    def memory(self, device: str) -> tuple[int, int]:
        """(free, total) bytes on a device."""
        return device_memory(device)

    def torch_device(self, device: str) -> Any:
        """Where inputs must go to run on `device`."""
        import torch

        return torch.device(device)

    def move(self, obj: Any, device: str, dtype: str | None) -> None:
        """Move (and cast) a component in place; objects that are not modules only move."""
        import torch

        if isinstance(obj, torch.nn.Module):
            current = next((p.dtype for p in obj.parameters() if p.is_floating_point()), None)
            if dtype is None or current == torch_dtype(dtype):
                # Pass a dtype only to cast: diffusers logs a warning on every .to() that names one.
                obj.to(device=self.torch_device(device))
            else:
                obj.to(device=self.torch_device(device), dtype=torch_dtype(dtype))
        elif hasattr(obj, "to"):
            obj.to(self.torch_device(device))

    def free(self, device: str) -> None:
        """Return freed memory to the device after a drop or an out-of-memory error."""
        gc.collect()
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
        elif device == "mps":
            import torch

            torch.mps.empty_cache()

    def synchronize(self, device: str) -> None:
        """Wait for queued device work so that timings are honest."""
        if device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(torch.device(device))
