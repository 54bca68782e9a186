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


def attach_group_offload(module: Any, device: Any) -> None:
    """diffusers' group offloading: weights stay in CPU memory and each block moves to `device` as it runs.

    Works on any torch module with block lists (diffusers models and transformers' decoder layers alike); one
    block per group keeps the device's share to the largest block plus what sits outside the lists.
    """
    import torch
    from diffusers.hooks import apply_group_offloading

    # A transformers model keeps its layer list inside its base model (Qwen3ForCausalLM.model.layers): name that
    # child as a block module so the groups are its layers, not the whole base model in one piece.
    prefix = getattr(module, "base_model_prefix", "")
    inner = [prefix] if prefix and isinstance(getattr(module, prefix, None), torch.nn.Module) else None
    apply_group_offloading(
        module,
        onload_device=device,
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=1,
        block_modules=inner,
    )


def detach(module: Any) -> None:
    """Remove swap, sequential or group-offload hooks; the weights are then in the module, in CPU memory."""
    from accelerate.hooks import remove_hook_from_module

    remove_hook_from_module(module, recurse=True)
    registry = getattr(module, "_diffusers_hook", None)
    if registry is not None:
        # diffusers' group offloading hooks (and the two it installs beside them), by their registered names.
        for name in ("group_offloading", "layer_execution_tracker", "lazy_prefetch_group_offloading"):
            registry.remove_hook(name, recurse=True)
