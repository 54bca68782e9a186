"""Faster one-token decode for Qwen3.5's linear-attention layers where transformers falls back to its reference code.

Without the GPU packages `causal-conv1d` and `flash-linear-attention` (never on CPU: they need Triton/CUDA),
transformers decodes each Gated-DeltaNet layer with reference PyTorch: a grouped `conv1d` call for a 4-tap
window (which oneDNN runs slowly in bf16: ~17 ms per layer per token measured on this CPU under load) and a
recurrent-state update written as seven full passes over the 16x128x128 fp32 state with broadcast products.
The replacements below compute the same thing for the one-token case only (prefill keeps the reference
chunked code): the convolution as a 4-element multiply-sum, the state update as batched matrix products.
`install()` swaps them into the transformers module, only for the functions whose fast package is absent;
`uninstall()` restores the originals (the benchmark measures both in one run).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

_MODULE = "transformers.models.qwen3_5.modeling_qwen3_5"
# function name in the transformers module -> the package whose kernel transformers would use instead of ours
_PACKAGES = {"causal_conv1d_update": "causal_conv1d", "torch_recurrent_gated_delta_rule": "fla"}
_originals: dict[str, Any] = {}
_PIP_NAMES = {"causal_conv1d": "causal-conv1d", "fla": "flash-linear-attention"}


def gpu_hint(device: str) -> str | None:
    """One line for a CUDA planner without the fast-kernel packages (on CPU they cannot help, so nothing)."""
    if not device.startswith("cuda"):
        return None
    missing = [pip for module, pip in _PIP_NAMES.items() if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return (
        f"built-in planner on {device}: transformers runs its linear-attention layers with slower reference "
        f"kernels; `pip install {' '.join(missing)}` gives it the fast ones"
    )


def install() -> bool:
    """Use the fast decode paths (idempotent); False when transformers has no Qwen3.5 or both fast packages exist."""
    try:
        module = importlib.import_module(_MODULE)
    except ImportError:
        return False
    fast = {"causal_conv1d_update": _conv1d_update, "torch_recurrent_gated_delta_rule": _recurrent_delta_rule}
    for name, replacement in fast.items():
        if name in _originals or importlib.util.find_spec(_PACKAGES[name]) is not None:
            continue
        original = getattr(module, name, None)
        if original is None:
            continue
        _originals[name] = original
        setattr(module, name, replacement)
    return bool(_originals)


def uninstall() -> None:
    """Put transformers' own functions back."""
    module = importlib.import_module(_MODULE)
    for name, original in _originals.items():
        setattr(module, name, original)
    _originals.clear()


def _conv1d_update(
    hidden_states: Any, conv_state: Any, weight: Any, bias: Any = None, activation: str | None = None, **kwargs: Any
) -> Any:
    """One step of a depthwise causal convolution: shift the state in place, then a K-tap multiply-sum."""
    import torch

    _batch, channels, length = hidden_states.shape
    taps = weight.shape[-1]
    if length != 1 or conv_state.shape[-1] < taps:
        return _originals["causal_conv1d_update"](hidden_states, conv_state, weight, bias, activation, **kwargs)
    # Same state as the reference's `conv_state.copy_(cat([conv_state, x])[..., -state_len:])`.
    conv_state.copy_(torch.cat([conv_state[:, :, 1:], hidden_states.to(conv_state.dtype)], dim=-1))
    window = conv_state[:, :, -taps:]
    # fp32 accumulation as oneDNN does for the reference conv; the result is rounded to the weight dtype like it.
    out = (window.float() * weight.float()).sum(dim=-1, keepdim=True)
    if bias is not None:
        out = out + bias.float().view(1, channels, 1)
    out = out.to(weight.dtype)
    if activation is not None:
        from transformers.activations import ACT2FN

        out = ACT2FN[activation](out)
    return out.to(hidden_states.dtype)


def _recurrent_delta_rule(
    query: Any,
    key: Any,
    value: Any,
    g: Any,
    beta: Any,
    initial_state: Any = None,
    output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """The gated delta rule for one token from a given state, in fp32, with the state touched by matrix products."""
    import torch

    batch, length, k_heads, k_dim = key.shape
    v_heads, v_dim = value.shape[-2:]
    if length != 1 or initial_state is None or kwargs.get("cu_seqlens") is not None:
        return _originals["torch_recurrent_gated_delta_rule"](
            query,
            key,
            value,
            g=g,
            beta=beta,
            initial_state=initial_state,
            output_final_state=output_final_state,
            use_qk_l2norm_in_kernel=use_qk_l2norm_in_kernel,
            **kwargs,
        )
    out_dtype = query.dtype
    if k_heads != v_heads:  # grouped: each query/key head serves v_heads // k_heads value heads
        query = query.repeat_interleave(v_heads // k_heads, dim=2)
        key = key.repeat_interleave(v_heads // k_heads, dim=2)
    heads = batch * v_heads
    q = query.float().reshape(heads, 1, k_dim)
    k = key.float().reshape(heads, 1, k_dim)
    v = value.float().reshape(heads, 1, v_dim)
    if use_qk_l2norm_in_kernel:
        q = q * torch.rsqrt((q * q).sum(-1, keepdim=True) + 1e-6)
        k = k * torch.rsqrt((k * k).sum(-1, keepdim=True) + 1e-6)
    q = q / (k_dim**0.5)
    decay = g.float().reshape(heads, 1, 1).exp()
    rate = beta.float().reshape(heads, 1, 1)
    # A new tensor (the cache's own state is replaced, never written to, as in the reference).
    state = initial_state.float().reshape(heads, k_dim, v_dim) * decay
    delta = (v - torch.bmm(k, state)) * rate  # what the state recalls for this key, corrected towards the value
    state.baddbmm_(k.transpose(1, 2), delta)  # rank-1 update k^T delta
    out = torch.bmm(q, state).reshape(batch, v_heads, 1, v_dim).transpose(1, 2).to(out_dtype)
    final = state.reshape(batch, v_heads, k_dim, v_dim) if output_final_state else None
    return out, final
