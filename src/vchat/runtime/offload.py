"""Degraded placements: swap whole components onto the device on call, or stream their layers (accelerate hooks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def attach_swap_hook(module: Any, device: Any, swap_in: Callable[[], None]) -> None:
    """Call `swap_in` before each forward (and diffusers' encode/decode), then run on `device`.

    accelerate's hook protocol is used because diffusers pipelines read `_hf_hook.execution_device` to place
    their inputs, and AutoencoderKL.encode/decode call `_hf_hook.pre_forward` themselves.
    """
    from accelerate.hooks import ModelHook, add_hook_to_module
    from accelerate.utils import send_to_device

    class SwapInHook(ModelHook):
        execution_device = device

        def pre_forward(self, module: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            swap_in()
            return send_to_device(args, device), send_to_device(kwargs, device)

    add_hook_to_module(module, SwapInHook())


def attach_sequential(module: Any, device: Any) -> None:
    """Keep weights in CPU memory and stream each layer to `device` as it runs (slow, fits any budget)."""
    from accelerate import cpu_offload

    cpu_offload(module, execution_device=device)


def detach(module: Any) -> None:
    """Remove swap or sequential hooks; sequential offload puts the weights back in the module (in CPU memory)."""
    from accelerate.hooks import remove_hook_from_module

    remove_hook_from_module(module, recurse=True)
