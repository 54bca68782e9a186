"""What benchmarks/tiers.py measures: one entry per tool and tier, and full-size random-weight builders per component.

To add a tool or a model, add a `ToolEntry` to ENTRIES (and a builder to BUILDERS, and a call to CALLS when it can be
run); the table, the budgets and the GPU run follow from the list.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.zoo: the planner's config, a code-built tokenizer
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # runtime.py: the classic components' configs


@dataclass(frozen=True)
class ToolEntry:
    """One tool in one tier: the weighted components a call holds on the device, and how to run one call."""

    tool: str
    tier: str  # classic | current
    components: tuple[str, ...]
    call: str | None = None  # a key of CALLS; None: counted only (too slow or too big to run here)
    note: str = ""


SD = ("sd15.unet", "sd15.text_encoder", "sd15.vae")
KLEIN = ("flux2_klein.transformer", "flux2_klein.text_encoder", "flux2_klein.vae")

ENTRIES: list[ToolEntry] = [
    ToolEntry("detect_objects", "classic", ("grounding_dino",), "grounding_dino"),
    ToolEntry("detect_objects", "current", ("sam3",), "sam3"),
    ToolEntry("segment_object", "classic", ("grounding_dino", "sam"), "grounding_dino+sam"),
    ToolEntry("segment_object", "current", ("sam3",), "sam3"),
    ToolEntry("estimate_depth", "classic", ("depth",), "depth"),
    ToolEntry("estimate_depth", "current", ("depth_anything",), "depth_anything"),
    ToolEntry("caption_image", "classic", ("blip_caption",), "blip_caption"),
    ToolEntry("caption_image", "current", ("blip_caption",), "blip_caption", "BLIP in both tiers for now"),
    ToolEntry("generate_image", "classic", SD, None, "20 steps at 512 px"),
    ToolEntry("instruct_edit", "classic", ("pix2pix.unet", *SD[1:]), None),
    ToolEntry("remove_object", "classic", ("grounding_dino", "sam", "sd15_inpaint.unet", *SD[1:]), None),
    ToolEntry("generate_from_depth", "classic", (*SD, "controlnet_depth", "depth"), None),
    ToolEntry("generate_from_depth", "current", (*SD, "controlnet_depth", "depth_anything"), None),
    # FLUX.2 [klein] rows (generate_image, instruct_edit, remove/replace_object, extend_image in the current tier)
    # come with the klein tools; the text encoder and the transformer take turns on the device.
    ToolEntry("generate_image", "current", KLEIN, None, "FLUX.2 [klein] 4B, 4 steps"),
]

PLANNER = "planner_2b"


def _sam3_config() -> Any:
    from transformers import Sam3Config

    return Sam3Config()  # the defaults are facebook/sam3's architecture


def _depth_anything_config(size: str = "small") -> Any:
    from transformers import DepthAnythingConfig

    shapes = {  # (hidden, layers, heads, out indices, neck, fusion) of the -hf checkpoints
        "small": (384, 12, 6, [3, 6, 9, 12], [48, 96, 192, 384], 64),
        "base": (768, 12, 12, [3, 6, 9, 12], [96, 192, 384, 768], 128),
        "large": (1024, 24, 16, [5, 12, 18, 24], [256, 512, 1024, 1024], 256),
    }
    hidden, layers, heads, outs, neck, fusion = shapes[size]
    backbone = {
        "model_type": "dinov2",
        "image_size": 518,
        "patch_size": 14,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "out_indices": outs,
        "reshape_hidden_states": False,
    }
    return DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=hidden, neck_hidden_sizes=neck, fusion_hidden_size=fusion
    )


def _klein_transformer() -> Any:
    from diffusers import Flux2Transformer2DModel

    # FLUX.2 [klein] 4B: 5 double-stream and 20 single-stream blocks of 24 heads x 128; text features are three
    # Qwen3-4B hidden layers stacked (3 x 2560), and the distilled model has no guidance embedding.
    return Flux2Transformer2DModel(
        num_layers=5,
        num_single_layers=20,
        num_attention_heads=24,
        attention_head_dim=128,
        joint_attention_dim=7680,
        guidance_embeds=False,
    )


def _klein_text_encoder() -> Any:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(  # Qwen3-4B
        hidden_size=2560,
        num_hidden_layers=36,
        intermediate_size=9728,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        vocab_size=151936,
        tie_word_embeddings=True,
        max_position_embeddings=40960,
    )
    return Qwen3ForCausalLM(config)


def _klein_vae() -> Any:
    from diffusers import AutoencoderKLFlux2

    return AutoencoderKLFlux2()


def _planner() -> Any:
    from tests.zoo import planner_config, planner_tokenizer
    from transformers import Qwen3_5ForConditionalGeneration

    return Qwen3_5ForConditionalGeneration(planner_config(planner_tokenizer(), "2b"))


def _classic(key: str) -> Callable[[], Any]:
    def build() -> Any:
        from runtime import build as classic_build

        return classic_build(key)

    return build


BUILDERS: dict[str, Callable[[], Any]] = {
    "sam3": lambda: __import__("transformers").Sam3Model(_sam3_config()),
    "depth_anything": lambda: __import__("transformers").DepthAnythingForDepthEstimation(_depth_anything_config()),
    "flux2_klein.transformer": _klein_transformer,
    "flux2_klein.text_encoder": _klein_text_encoder,
    "flux2_klein.vae": _klein_vae,
    PLANNER: _planner,
}


def build_full(key: str) -> Any:
    """A full-size module for a component key with random weights, on the current default torch device."""
    builder = BUILDERS.get(key) or _classic(key)
    return builder()


# ----- one call at 512 px, straight to the model (inputs at the size the tool's processor would make) ---------------


def _ids(length: int, vocab: int = 1000) -> Any:
    import torch

    return torch.randint(5, vocab, (1, length))


def _grounding_dino(parts: dict[str, Any], device: str, dtype: Any) -> None:
    import torch

    # A 512 px photo is resized to 800 px on its short side; "cat . dog ." is about 6 tokens.
    ids = _ids(6).to(device)
    parts["grounding_dino"](
        pixel_values=torch.randn(1, 3, 800, 800, device=device, dtype=dtype),
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        token_type_ids=torch.zeros_like(ids),
    )


def _sam(parts: dict[str, Any], device: str, dtype: Any) -> None:
    import torch

    parts["sam"](
        pixel_values=torch.randn(1, 3, 1024, 1024, device=device, dtype=dtype),
        input_boxes=torch.tensor([[[100.0, 100.0, 600.0, 600.0]]], device=device, dtype=dtype),
        multimask_output=False,
    )


def _sam3(parts: dict[str, Any], device: str, dtype: Any) -> None:
    import torch

    ids = _ids(32).to(device)  # Sam3Processor pads every prompt to 32 tokens
    parts["sam3"](
        pixel_values=torch.randn(1, 3, 1008, 1008, device=device, dtype=dtype),
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
    )


def _grounded(parts: dict[str, Any], device: str, dtype: Any) -> None:
    _grounding_dino(parts, device, dtype)
    _sam(parts, device, dtype)


def _depth(key: str, side: int) -> Callable[[dict[str, Any], str, Any], None]:
    def call(parts: dict[str, Any], device: str, dtype: Any) -> None:
        import torch

        parts[key](pixel_values=torch.randn(1, 3, side, side, device=device, dtype=dtype))

    return call


def _blip_caption(parts: dict[str, Any], device: str, dtype: Any) -> None:
    import torch

    # BLIP-base sees 384 px; a caption of 20 tokens (random weights would stop at once without the minimum).
    parts["blip_caption"].generate(
        pixel_values=torch.randn(1, 3, 384, 384, device=device, dtype=dtype), max_new_tokens=20, min_new_tokens=20
    )


CALLS: dict[str, Callable[[dict[str, Any], str, Any], None]] = {
    "grounding_dino": _grounding_dino,
    "grounding_dino+sam": _grounded,
    "sam3": _sam3,
    "depth": _depth("depth", 384),  # DPT-hybrid works at 384 px
    "depth_anything": _depth("depth_anything", 518),  # Depth Anything V2 at 518 px
    "blip_caption": _blip_caption,
}
