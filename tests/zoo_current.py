"""Tiny random-weight models of the current tier's detectors (SAM 3, Depth Anything V2), for tests/zoo.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# SAM 3's text tower pads every prompt to this many tokens; its position table must be as long.
SAM3_TEXT_LENGTH = 32
SAM3_IMAGE = 112  # 8 x 8 patches of 14 px
SAM3_QUERIES = 6


def sam3_config(tokenizer: Any) -> Any:
    """A SAM 3 small enough to build, save and run in a fraction of a second, with the real structure."""
    from transformers import Sam3Config, Sam3VisionConfig, Sam3ViTConfig

    backbone = Sam3ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=SAM3_IMAGE,
        patch_size=14,
        window_size=4,
        global_attn_indexes=[1],
    )
    side = SAM3_IMAGE // 14
    vision = Sam3VisionConfig(
        backbone_config=backbone,
        fpn_hidden_size=32,
        scale_factors=[2.0, 1.0],
        backbone_feature_sizes=[[2 * side, 2 * side], [side, side]],
    )
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "projection_dim": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "max_position_embeddings": SAM3_TEXT_LENGTH,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    small = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}
    return Sam3Config(
        vision_config=vision,
        text_config=text,
        geometry_encoder_config={**small, "num_layers": 1},
        detr_encoder_config={**small, "num_layers": 1},
        detr_decoder_config={**small, "num_layers": 1, "num_queries": SAM3_QUERIES},
        mask_decoder_config={"hidden_size": 32, "num_upsampling_stages": 2, "num_attention_heads": 4},
    )


def save_sam3(folder: Path) -> None:
    """SAM 3 with a CLIP byte-level tokenizer; its scoring biased so that random weights find objects."""
    import torch
    from tests.zoo import _clip_tokenizer
    from transformers import Sam3ImageProcessor, Sam3Model, Sam3Processor

    torch.manual_seed(0)
    tokenizer = _clip_tokenizer()
    model = Sam3Model(sam3_config(tokenizer)).eval()
    with torch.no_grad():
        # Random weights score every query near 0.25 and leave the concept's presence a coin toss. Raising the
        # presence head's bias and the projections' shared bias makes every query a confident find, as a trained
        # model is for an object that is there, while the random part keeps the scores apart.
        model.detr_decoder.presence_head.layer3.bias.fill_(8.0)
        model.dot_product_scoring.text_proj.bias.fill_(1.0)
        model.dot_product_scoring.query_proj.bias.fill_(1.0)
    model.save_pretrained(folder)
    image_processor = Sam3ImageProcessor(
        size={"height": SAM3_IMAGE, "width": SAM3_IMAGE}, mask_size={"height": 32, "width": 32}
    )
    Sam3Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def save_depth_anything(folder: Path) -> None:
    """Depth Anything V2 (a DINOv2 backbone, DPT-style neck and head) at 56 px, saved like the -hf checkpoints."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor

    torch.manual_seed(0)
    backbone = {
        "model_type": "dinov2",
        "image_size": 56,
        "patch_size": 14,
        "hidden_size": 32,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "out_indices": [1, 2, 3, 4],
        "reshape_hidden_states": False,
    }
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
    )
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    # The real processor: keep the aspect ratio, a multiple of 14, bicubic (the -hf checkpoints' settings).
    DPTImageProcessor(
        size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14, resample=3
    ).save_pretrained(folder)


def current_builders() -> dict[str, tuple[str, Callable[[Path], None]]]:
    """Key -> (default hub id, builder) for the current tier's detectors."""
    return {
        "sam3": ("facebook/sam3", save_sam3),
        "depth_anything": ("depth-anything/Depth-Anything-V2-Small-hf", save_depth_anything),
    }
