"""Tiny random-weight models for every default model key, built once, laid out as folders and as a fake HF cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vchat.runtime.devices import Backend

# Keys the zoo builds, each saved under its default hub id (see vchat.runtime.catalog.DEFAULT_MODELS).
CONTROLNET_KINDS = ("canny", "mlsd", "hed", "scribble", "openpose", "seg", "depth", "normal")


# The smallest ViT every vision tower here accepts (BLIP, CLIPSeg, the safety checker's CLIP).
TINY_VISION = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "image_size": 32,
    "patch_size": 8,
}


def _clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    # Byte-level BPE over the 256 byte symbols (with and without </w>) is enough to encode any prompt.
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for sym in symbols:
        vocab[sym] = len(vocab)
    for sym in symbols:
        vocab[sym + "</w>"] = len(vocab)
    merges: list[tuple[str, str]] = [("a", "n</w>"), ("t", "h")]
    vocab["an</w>"] = len(vocab)
    vocab["th"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _bert_vocab() -> dict[str, int]:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    words += list("abcdefghijklmnopqrstuvwxyz0123456789.,?!")
    words += ["a", "the", "cat", "dog", "car", "what", "color", "is", "of", "photo", "red", "blue", "yes", "no"]
    return {w: i for i, w in enumerate(dict.fromkeys(words))}


def _bert_tokenizer(bos_dec: bool = False) -> Any:
    from transformers import BertTokenizer

    kwargs: dict[str, Any] = {"model_max_length": 64}
    if bos_dec:
        # BLIP decodes from [DEC]; registered as special so it never leaks into captions.
        kwargs.update(bos_token="[DEC]", additional_special_tokens=["[DEC]"])
    return BertTokenizer(vocab=_bert_vocab(), **kwargs)


def _sd_parts(in_channels: int = 4) -> dict[str, Any]:
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = _clip_tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=32,
    )
    # Four blocks keep the real 8x latent scale that the pipelines' size maths assume.
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            projection_dim=32,
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1
    )
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}


def _save_sd(folder: Path, pipeline_class: str, in_channels: int) -> None:
    import diffusers

    parts = _sd_parts(in_channels)
    cls = getattr(diffusers, pipeline_class)
    pipe = cls(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)


def _save_controlnet(folder: Path) -> None:
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(1)
    net = ControlNetModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=32,
        conditioning_embedding_out_channels=(4, 8, 16, 32),
    )
    net.save_pretrained(folder)


def _save_blip(folder: Path, vqa: bool) -> None:
    from transformers import (
        BlipConfig,
        BlipForConditionalGeneration,
        BlipForQuestionAnswering,
        BlipImageProcessor,
        BlipProcessor,
    )

    tokenizer = _bert_tokenizer(bos_dec=True)
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "encoder_hidden_size": 32,
        "max_position_embeddings": 64,
        "bos_token_id": tokenizer.bos_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = dict(TINY_VISION)
    config = BlipConfig(text_config=text, vision_config=vision, projection_dim=32)
    model = (BlipForQuestionAnswering if vqa else BlipForConditionalGeneration)(config)
    model.save_pretrained(folder)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def _save_clipseg(folder: Path) -> None:
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor, ViTImageProcessor

    tokenizer = _clip_tokenizer()
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "max_position_embeddings": 77,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 1,
    }
    vision = dict(TINY_VISION)
    config = CLIPSegConfig(
        text_config=text,
        vision_config=vision,
        projection_dim=32,
        reduce_dim=16,
        extract_layers=[1],
        decoder_num_attention_heads=4,
        decoder_intermediate_size=37,
    )
    CLIPSegForImageSegmentation(config).save_pretrained(folder)
    image_processor = ViTImageProcessor(size={"height": 32, "width": 32}, do_resize=True)
    CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def _save_depth(folder: Path) -> None:
    from transformers import BitConfig, DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    # DPT-hybrid: a BiT backbone with exactly three out-stages, like Intel/dpt-hybrid-midas.
    backbone = BitConfig(
        global_padding="same",
        layer_type="bottleneck",
        depths=[1, 1, 1],
        hidden_sizes=[8, 16, 32],
        embedding_size=8,
        out_features=["stage1", "stage2", "stage3"],
        num_groups=4,
    )
    config = DPTConfig(
        is_hybrid=True,
        embedding_type="vit_hybrid",
        backbone_config=backbone,
        backbone_featmap_shape=[1, 32, 2, 2],
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=32,
        patch_size=16,
        neck_hidden_sizes=[8, 16, 32, 32],
        backbone_out_indices=[0, 1, 2, 3],
        fusion_hidden_size=16,
        head_in_index=-1,
        readout_type="project",
    )
    DPTForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(folder)


def _save_segmentation(folder: Path) -> None:
    from transformers import ConvNextConfig, SegformerImageProcessor, UperNetConfig, UperNetForSemanticSegmentation

    backbone = ConvNextConfig(
        num_channels=3,
        hidden_sizes=[8, 16, 32, 32],
        depths=[1, 1, 1, 1],
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = UperNetConfig(
        backbone_config=backbone,
        hidden_size=16,
        num_labels=150,
        auxiliary_in_channels=32,
        auxiliary_channels=8,
        use_auxiliary_head=True,
    )
    UperNetForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)


def _save_grounding_dino(folder: Path) -> None:
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    tokenizer = _bert_tokenizer()
    backbone = {
        "model_type": "swin",
        "embed_dim": 8,
        "depths": [1, 1, 1, 1],
        "num_heads": [1, 1, 2, 2],
        "window_size": 4,
        "image_size": 128,
        "out_indices": [2, 3, 4],
    }
    text = {
        "model_type": "bert",
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 1,
        "max_position_embeddings": 64,
    }
    # Two decoder layers at least and channel widths divisible by 32 (hard-coded GroupNorm in the input projection).
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=10,
        max_text_len=32,
        num_feature_levels=4,
    )
    GroundingDinoForObjectDetection(config).save_pretrained(folder)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 128})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def _save_sam(folder: Path) -> None:
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    vision = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "image_size": 64,
        "patch_size": 16,
        "output_channels": 32,
        "global_attn_indexes": [1],
        "window_size": 2,
        "mlp_dim": 37,
        "num_pos_feats": 16,  # positional features are 2 x this wide and must match the prompt encoder's 32
    }
    prompt = {"hidden_size": 32, "image_size": 64, "patch_size": 16, "mask_input_channels": 4}
    mask = {
        "hidden_size": 32,
        "mlp_dim": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "iou_head_hidden_dim": 16,
    }
    config = SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=mask)
    SamModel(config).save_pretrained(folder)
    image_processor = SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})
    SamProcessor(image_processor=image_processor).save_pretrained(folder)


def _save_annotators(folder: Path) -> None:
    import torch

    with warnings.catch_warnings():  # controlnet_aux's import complains about timm and mediapipe
        warnings.simplefilter("ignore")
        from controlnet_aux.hed import ControlNetHED_Apache2
        from controlnet_aux.mlsd.models.mbv2_mlsd_large import MobileV2_MLSD_Large

    # Their architectures are fixed by controlnet_aux; random weights at real size (HED ~29 MB, MLSD ~6 MB).
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ControlNetHED_Apache2().state_dict(), folder / "ControlNetHED.pth")
    torch.save(MobileV2_MLSD_Large().state_dict(), folder / "mlsd_large_512_fp32.pth")


# The built-in planner's chat format (Qwen's ChatML with images as vision-start/pad/end), kept small; the real
# checkpoints ship their own template. `{{- '\n' }}` keeps the newlines Jinja's `{%-` would otherwise eat.
PLANNER_TEMPLATE = (
    "{%- for m in messages -%}"
    "{{ '<|im_start|>' + m['role'] + '\n' }}"
    "{%- if m['content'] is string -%}{{ m['content'] }}"
    "{%- else -%}{%- for p in m['content'] -%}"
    "{%- if p['type'] == 'image' -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif p['type'] == 'text' -%}{{ p['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{ '<think>\n\n</think>\n\n' }}{%- endif -%}"
    "{%- endif -%}"
)
PLANNER_SPECIAL = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<think>",
    "</think>",
)
# Patch 16 and merge 2 as in Qwen3.5; images of up to 128x128 px (64 patches, 16 tokens) keep tests fast.
PLANNER_MAX_PIXELS = 128 * 128


def planner_tokenizer(extra: tuple[str, ...] = (), vocab_size: int = 512) -> Any:
    """A small byte-level BPE with the Qwen split regex (the Qwen tokenizer class re-imposes it on load).

    `extra` texts are added to the training corpus (a test that overfits a prompt keeps it short this way).
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import Qwen3_5Tokenizer
    from transformers.models.qwen3_5.tokenization_qwen3_5 import PRETOKENIZE_REGEX

    corpus = [
        'Thought: Do I need to use a tool? Yes\nAction: canny_edges\nAction Input: {"image": "img1"}\n',
        "Observation: New image img2\nThought: Do I need to use a tool? No\nAI: Here are the edges, img2.",
        "You are vchat, an assistant that sees, makes and edits images by calling visual tools.",
        "flip the image, find the edges of the photo, make it look like winter",
    ]
    bpe = Tokenizer(BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(PLANNER_SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([*corpus, *extra] * 10, trainer)
    merges = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]
    ]
    return Qwen3_5Tokenizer(
        vocab=bpe.get_vocab(),
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(PLANNER_SPECIAL[1:]),
    )


# Qwen3.5 shapes: "0.8b" and "2b" as published in the checkpoints' config.json (hybrid layers, three Gated-DeltaNet
# layers per full-attention one), and the tiny one the tests use. The benchmark builds the real sizes from here too,
# so the wiring below (special-token ids, layer kinds, tied embeddings) lives in one place.
PLANNER_SHAPES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 4,
            "linear_key_head_dim": 16,
            "linear_value_head_dim": 16,
            "max_position_embeddings": 8192,
        },
        "vision": {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "num_position_embeddings": 64,
        },
    },
    "0.8b": {
        "text": {
            "hidden_size": 1024,
            "intermediate_size": 3584,
            "num_hidden_layers": 24,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "head_dim": 256,
            "linear_num_key_heads": 16,
            "linear_num_value_heads": 16,
            "linear_key_head_dim": 128,
            "linear_value_head_dim": 128,
            "linear_conv_kernel_dim": 4,
            "max_position_embeddings": 262_144,
        },
        "vision": {
            "depth": 12,
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_heads": 12,
            "num_position_embeddings": 2304,
        },
    },
    "2b": {
        "text": {
            "hidden_size": 2048,
            "intermediate_size": 6144,
            "num_hidden_layers": 24,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "head_dim": 256,
            "linear_num_key_heads": 16,
            "linear_num_value_heads": 16,
            "linear_key_head_dim": 128,
            "linear_value_head_dim": 128,
            "linear_conv_kernel_dim": 4,
            "max_position_embeddings": 262_144,
        },
        "vision": {
            "depth": 24,
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_heads": 16,
            "num_position_embeddings": 2304,
        },
    },
}
QWEN35_VOCAB = 248_320  # the real vocabulary size: the embedding and the output layer are a third of the 0.8B


def planner_config(
    tokenizer: Any,
    size: str = "tiny",
    *,
    layers: int | None = None,
    init_std: float | None = None,
    vocab_size: int | None = None,
) -> Any:
    """A Qwen3.5 config (hybrid linear/full attention text model plus vision tower) for one of PLANNER_SHAPES.

    The tiny shape gets a wide init (std 0.3) so random weights give varied text; real sizes keep the default init
    and the real vocabulary size (ids beyond the small tokenizer's are never produced by it, only by the model).
    """
    from transformers import Qwen3_5Config

    shape = PLANNER_SHAPES[size]
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in PLANNER_SPECIAL}
    count = layers or shape["text"]["num_hidden_layers"]
    # Full attention on every fourth layer and on the last (a 2-layer test model is linear then full).
    kinds = ["full_attention" if (i + 1) % 4 == 0 or i == count - 1 else "linear_attention" for i in range(count)]
    text: dict[str, Any] = {
        **shape["text"],
        "num_hidden_layers": count,
        "layer_types": kinds,
        "vocab_size": vocab_size or (len(tokenizer) if size == "tiny" else QWEN35_VOCAB),
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": True,
    }
    std = init_std if init_std is not None else (0.3 if size == "tiny" else None)
    if std is not None:
        text["initializer_range"] = std
    vision = {
        **shape["vision"],
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": text["hidden_size"],
    }
    return Qwen3_5Config(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def planner_processor(tokenizer: Any) -> Any:
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    image = Qwen2VLImageProcessor(
        patch_size=16, temporal_patch_size=2, merge_size=2, min_pixels=32 * 32, max_pixels=PLANNER_MAX_PIXELS
    )
    video = Qwen3VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2)
    return Qwen3VLProcessor(
        image_processor=image, tokenizer=tokenizer, video_processor=video, chat_template=PLANNER_TEMPLATE
    )


def _save_planner(folder: Path) -> None:
    import torch
    from transformers import Qwen3_5ForConditionalGeneration

    tokenizer = planner_tokenizer()
    torch.manual_seed(0)
    Qwen3_5ForConditionalGeneration(planner_config(tokenizer)).save_pretrained(folder)
    planner_processor(tokenizer).save_pretrained(folder)


def _save_klein(folder: Path) -> None:
    from tests.klein_zoo import pipeline

    pipeline().save_pretrained(folder)


def _builders() -> dict[str, tuple[str, Callable[[Path], None]]]:
    """Key -> (default hub id, builder writing that model into a folder)."""
    builders: dict[str, tuple[str, Callable[[Path], None]]] = {
        "sd15": ("stable-diffusion-v1-5/stable-diffusion-v1-5", lambda p: _save_sd(p, "StableDiffusionPipeline", 4)),
        "sd15_inpaint": (
            "stable-diffusion-v1-5/stable-diffusion-inpainting",
            lambda p: _save_sd(p, "StableDiffusionInpaintPipeline", 9),
        ),
        "pix2pix": (
            "timbrooks/instruct-pix2pix",
            lambda p: _save_sd(p, "StableDiffusionInstructPix2PixPipeline", 8),
        ),
        "blip_caption": ("Salesforce/blip-image-captioning-base", lambda p: _save_blip(p, vqa=False)),
        "blip_vqa": ("Salesforce/blip-vqa-base", lambda p: _save_blip(p, vqa=True)),
        "clipseg": ("CIDAS/clipseg-rd64-refined", _save_clipseg),
        "depth": ("Intel/dpt-hybrid-midas", _save_depth),
        "segmentation": ("openmmlab/upernet-convnext-small", _save_segmentation),
        "grounding_dino": ("IDEA-Research/grounding-dino-tiny", _save_grounding_dino),
        "sam": ("facebook/sam-vit-base", _save_sam),
        "annotators": ("lllyasviel/Annotators", _save_annotators),
        "planner": ("Qwen/Qwen3.5-0.8B", _save_planner),
        # The current tier's FLUX.2 [klein] (tests/klein_zoo.py builds it).
        "flux2_klein": ("black-forest-labs/FLUX.2-klein-4B", _save_klein),
    }
    for kind in CONTROLNET_KINDS:
        builders[f"controlnet_{kind}"] = (f"lllyasviel/sd-controlnet-{kind}", _save_controlnet)
    from tests.zoo_current import current_builders

    builders.update(current_builders())
    return builders


def fingerprint() -> str:
    """Changes whenever this builder or a library that writes the files changes."""
    from importlib.metadata import version

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update((Path(__file__).parent / "klein_zoo.py").read_bytes())
    digest.update((Path(__file__).parent / "zoo_current.py").read_bytes())
    for package in (
        "torch",
        "diffusers",
        "transformers",
        "huggingface_hub",
        "controlnet_aux",
        "safetensors",
        "tokenizers",
    ):
        digest.update(f"{package}={version(package)}".encode())
    return digest.hexdigest()[:16]


def _build(root: Path) -> None:
    builders = _builders()
    local = root / "local"
    hub = root / "hub"
    saved: dict[str, Path] = {}
    for key, (repo_id, build) in builders.items():
        folder = local / key
        # The eight ControlNets are the same tiny architecture: build one, copy it.
        twin = next((saved[k] for k in saved if k.startswith("controlnet_") and key.startswith("controlnet_")), None)
        if twin is not None:
            shutil.copytree(twin, folder)
        else:
            build(folder)
        saved[key] = folder
        revision = hashlib.sha1(repo_id.encode()).hexdigest()
        repo = hub / ("models--" + repo_id.replace("/", "--"))
        shutil.copytree(folder, repo / "snapshots" / revision)
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(revision)
    (root / "index.json").write_text(json.dumps({k: v[0] for k, v in builders.items()}, indent=1))


def zoo_root(base: Path | None = None) -> Path:
    """Build the zoo once per fingerprint (locked, into a temp name, then renamed) and return its folder.

    Layout: `local/KEY/` (plain folders) and `hub/models--ORG--NAME/snapshots/<hex>/` (a fake HF cache).
    """
    from filelock import FileLock

    base = base or Path(os.environ.get("VCHAT_ZOO_DIR", Path(tempfile.gettempdir()) / "vchat-zoo"))
    base.mkdir(parents=True, exist_ok=True)
    root = base / fingerprint()
    with FileLock(str(base / "build.lock")):
        if not (root / "index.json").exists():
            tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
            try:
                _build(tmp)
                if root.exists():
                    shutil.rmtree(root)
                tmp.rename(root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return root


def hub_ids() -> dict[str, str]:
    """Key -> default hub id of every model the zoo builds."""
    return {key: repo for key, (repo, _) in _builders().items()}


if __name__ == "__main__":  # build (or find) the zoo and print where it is
    print(zoo_root(Path(sys.argv[1]) if len(sys.argv) > 1 else None))


class SimulatedBackend(Backend):
    """A pretend accelerator `sim:0` whose memory is CPU memory, so budgets and eviction run on any machine.

    Moves are recorded (and performed on CPU, so dtype casts are real); `total` is the device's memory size.
    """

    def __init__(self, total: int = 1 << 30):
        self.total = total
        self.moves: list[tuple[str, str | None]] = []

    def resolve_device(self, spec: str) -> str:
        return "sim:0" if spec in ("auto", "sim", "sim:0") else super().resolve_device(spec)

    def memory(self, device: str) -> tuple[int, int]:
        return (self.total, self.total) if device.startswith("sim") else super().memory(device)

    def torch_device(self, device: str) -> Any:
        import torch

        return torch.device("cpu")

    def move(self, obj: Any, device: str, dtype: str | None) -> None:
        self.moves.append((device, dtype))
        super().move(obj, device, dtype)

    def free(self, device: str) -> None:
        pass

    def synchronize(self, device: str) -> None:
        pass
