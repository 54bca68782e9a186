"""Memory sizes: parse budgets like "6GB", derive automatic budgets, and count the bytes of modules and files."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vchat.errors import ConfigError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)

# What stays free beside the weights: activations of a 512-px SD step, the CUDA context, other programs.
GPU_RESERVE_MIN = 1 << 30
GPU_RESERVE_FRACTION = 0.10
RAM_RESERVE_MIN = 2 << 30
RAM_RESERVE_FRACTION = 0.15

_SAFETENSORS_SIZES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


def parse_size(text: str | int | None, what: str = "budget") -> int | None:
    """Bytes for "6GB", "5.5GiB", "512MB" or a plain number; None for "auto" (or empty)."""
    if text is None:
        return None
    if isinstance(text, int):
        return text
    if text.strip().lower() in ("", "auto"):
        return None
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise ConfigError(f"{what} {text!r} is not a size; write e.g. 6GB, 5.5GiB, 512MB or auto")
    return int(float(match.group(1)) * _UNITS[unit])


AUTO = "auto"


def parse_budget(value: str | int | None, what: str = "budget") -> int | str | None:
    """A budget setting: bytes, AUTO (from free memory), or None for unlimited ("unlimited"/"none", or None)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", AUTO):
            return AUTO
        if text in ("none", "unlimited"):
            return None
    return parse_size(value, what)


def format_size(nbytes: int | float | None) -> str:
    """Sizes as "1.7 GB" (decimal units, like disk and download tools)."""
    if nbytes is None:
        return "-"
    value = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def auto_budget(free: int, total: int, accelerator: bool) -> int:
    """A budget from what is free now, minus room for activations and everything else on the machine."""
    if accelerator:
        reserve = max(GPU_RESERVE_MIN, int(total * GPU_RESERVE_FRACTION))
    else:
        reserve = max(RAM_RESERVE_MIN, int(total * RAM_RESERVE_FRACTION))
    return max(0, free - reserve)


def _tensors(obj: Any, depth: int = 0) -> Iterable[Any]:
    import torch

    if isinstance(obj, torch.nn.Module):
        yield from obj.parameters()
        yield from obj.buffers()
    elif depth < 2 and hasattr(obj, "__dict__"):
        # Annotator wrappers (controlnet_aux) hold their networks in plain attributes.
        for value in vars(obj).values():
            if isinstance(value, torch.nn.Module) or (hasattr(value, "__dict__") and not isinstance(value, type)):
                yield from _tensors(value, depth + 1)


def module_bytes(obj: Any) -> int:
    """Bytes of the weights and buffers an object holds (tied tensors counted once; works on the meta device)."""
    seen: set[int] = set()
    total = 0
    for tensor in _tensors(obj):
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
    return total


def state_bytes(obj: Any) -> int:
    """Bytes of the tensors held in a nest of objects, lists and dicts (a transformers cache: the KV of attention
    layers, the conv and recurrent state of linear ones); tensors shared between places counted once."""
    import torch

    seen: set[int] = set()
    total = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, torch.Tensor):
            if id(item) not in seen:
                seen.add(id(item))
                total += item.numel() * item.element_size()
        elif depth >= 4 or isinstance(item, (type, torch.nn.Module)):
            continue
        elif isinstance(item, (list, tuple)):
            stack.extend((value, depth + 1) for value in item)
        elif isinstance(item, dict):
            stack.extend((value, depth + 1) for value in item.values())
        elif hasattr(item, "__dict__"):
            stack.extend((value, depth + 1) for value in vars(item).values())
    return total


def module_params(obj: Any) -> int:
    """Number of parameters and buffer elements (tied tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for tensor in _tensors(obj):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel()
    return total


def safetensors_bytes(path: Path, dtype_size: int | None = None) -> int:
    """Bytes a .safetensors file takes once loaded, cast to `dtype_size` bytes per float (read from its header only)."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in info["shape"]:
            count *= int(dim)
        size = _SAFETENSORS_SIZES.get(info["dtype"], 4)
        is_float = info["dtype"] in ("F64", "F32", "F16", "BF16")
        total += count * (dtype_size if (dtype_size and is_float) else size)
    return total


def estimate_bytes(files: Iterable[Path], dtype_size: int) -> int:
    """Loaded size of weight files: exact for safetensors, file size scaled from fp32 otherwise."""
    total = 0
    for path in files:
        if path.suffix == ".safetensors":
            total += safetensors_bytes(path, dtype_size)
        elif path.exists():
            total += path.stat().st_size * dtype_size // 4
    return total
