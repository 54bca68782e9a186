"""A tiny random-weight FLUX.2 [klein] checkpoint (transformer, Qwen3 text encoder, offline tokenizer, VAE); the zoo
(tests/zoo.py) saves it under the default hub id."""

from __future__ import annotations

from typing import Any

# Real structure where the pipeline's maths depends on it: a 4-block VAE (8x cells, sides in multiples of 16), and
# a text encoder deep enough for the hidden layers klein stacks (9, 18, 27), each only 16 wide.
TEXT_WIDTH = 16
TEXT_LAYERS = 28
LATENT_CHANNELS = 2


def tokenizer() -> Any:
    """A small byte-level BPE Qwen2 tokenizer with a chat template that honours `enable_thinking`."""
    from tests.zoo import PLANNER_SPECIAL, PLANNER_TEMPLATE, planner_tokenizer
    from transformers import Qwen2TokenizerFast

    base = planner_tokenizer(extra=("a red car on a sofa, put the dog from the second image here",))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in _merges(base)]
    made = Qwen2TokenizerFast(
        vocab=base.get_vocab(),
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(PLANNER_SPECIAL[1:]),
    )
    made.chat_template = PLANNER_TEMPLATE
    return made


def _merges(tok: Any) -> list[Any]:
    import json

    return list(json.loads(tok.backend_tokenizer.to_str())["model"]["merges"])


def pipeline() -> Any:
    """The tiny Flux2KleinPipeline (step-distilled, as the default checkpoint is)."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = tokenizer()
    torch.manual_seed(0)
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            hidden_size=TEXT_WIDTH,
            intermediate_size=TEXT_WIDTH,
            num_hidden_layers=TEXT_LAYERS,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=8,
            vocab_size=len(tok),
            max_position_embeddings=1024,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
    )
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=LATENT_CHANNELS * 4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * TEXT_WIDTH,
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
        guidance_embeds=False,
    )
    vae = AutoencoderKLFlux2(
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=4,
        sample_size=64,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True)
    return Flux2KleinPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tok,
        transformer=transformer,
        is_distilled=True,
    )
