"""FLUX.2 [klein] 4B at full size on the meta device: parameters and weight bytes per component, no weights made.

The configurations are those the published checkpoint ships (`black-forest-labs/FLUX.2-klein-4B`: its
transformer, its Qwen3-4B text encoder, its VAE), so the counts are the real model's without a download.
`benchmarks/klein.py` prints them; a tier benchmark can call `component_sizes()` for its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vchat.runtime.catalog import KLEIN_ID, KLEIN_TEXT_ENCODER, KLEIN_TRANSFORMER, KLEIN_VAE

# transformer/config.json of the 4B checkpoints (distilled and base alike).
TRANSFORMER_4B: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 128,
    "num_layers": 5,
    "num_single_layers": 20,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 7680,
    "timestep_guidance_channels": 256,
    "mlp_ratio": 3.0,
    "axes_dims_rope": (32, 32, 32, 32),
    "rope_theta": 2000,
    "eps": 1e-6,
    "guidance_embeds": False,
}
# Qwen3-4B, the text encoder (embeddings tied to the output layer, as in Qwen3-4B).
TEXT_ENCODER_4B: dict[str, Any] = {
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
}
# AutoencoderKLFlux2's defaults are the checkpoint's VAE (32 latent channels, 128..512 wide).
VAE_4B: dict[str, Any] = {}


@dataclass(frozen=True)
class ComponentSize:
    """One component at full size: its parameter count and the bytes its weights take in `dtype`."""

    key: str
    model: str
    cls: str
    params: int
    nbytes: int
    dtype: str


def build(key: str, config: dict[str, Any] | None = None, device: str = "meta") -> Any:
    """One klein component at full size (or with `config` overrides) on `device`, random or meta weights."""
    import torch

    with torch.device(device):
        if key == KLEIN_TRANSFORMER:
            from diffusers import Flux2Transformer2DModel

            return Flux2Transformer2DModel(**{**TRANSFORMER_4B, **(config or {})})
        if key == KLEIN_TEXT_ENCODER:
            from transformers import Qwen3Config, Qwen3ForCausalLM

            return Qwen3ForCausalLM(Qwen3Config(**{**TEXT_ENCODER_4B, **(config or {})}))
        if key == KLEIN_VAE:
            from diffusers import AutoencoderKLFlux2

            return AutoencoderKLFlux2(**{**VAE_4B, **(config or {})})
    raise KeyError(f"no full-size configuration for {key!r}")


def component_sizes(dtype: str = "bfloat16") -> list[ComponentSize]:
    """Parameters and weight bytes (in `dtype`) of klein's transformer, text encoder and VAE, built on meta."""
    from vchat.runtime.devices import dtype_size

    rows = []
    for key in (KLEIN_TRANSFORMER, KLEIN_TEXT_ENCODER, KLEIN_VAE):
        module = build(key)
        # parameters() yields a tied tensor once, so Qwen3's shared embedding is counted once, as it is stored.
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
        rows.append(
            ComponentSize(key, KLEIN_ID, type(module).__name__, params, (params + buffers) * dtype_size(dtype), dtype)
        )
    return rows
