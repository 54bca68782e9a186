"""Helpers the perception tools share: RGB inputs, working sizes, condition maps, clean model text, tensors."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from vchat.errors import ToolError

if TYPE_CHECKING:
    import numpy as np

    from vchat.store.refs import ImageRef
    from vchat.tools.base import ToolContext

# Condition detectors work at most at this short side, the resolution ControlNet's annotators were run at.
DETECT_RESOLUTION = 512

# Special tokens of BERT-style (BLIP, Grounding DINO), CLIP/GPT-style and sentencepiece tokenizers.
_SPECIAL = re.compile(r"\[(?:CLS|SEP|PAD|UNK|MASK|DEC|ENC|unused\d+)\]|<\|[^|>]*\|>|</?s>|<pad>|<unk>|<mask>", re.I)


def rgb(image: Image.Image) -> Image.Image:
    """An RGB copy for the models: transparency is flattened onto white, like ControlNet's annotators do."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def clean_text(text: str) -> str:
    """Model output as one plain line: special tokens dropped, whitespace collapsed, no space before punctuation."""
    text = _SPECIAL.sub(" ", text)
    text = " ".join(text.split())
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return text.strip(" .,;:")


def working_size(size: tuple[int, int], short_side: int = DETECT_RESOLUTION, multiple: int = 64) -> tuple[int, int]:
    """(width, height) to run a detector at: short side at most `short_side` (never upscaled), sides a multiple."""
    scale = min(1.0, short_side / min(size))

    def snap(side: int) -> int:
        return max(multiple, round(side * scale / multiple) * multiple)

    return snap(size[0]), snap(size[1])


def fit_longest(image: Image.Image, longest: int) -> Image.Image:
    """A downscaled copy whose longest side is at most `longest` (the image itself when already small)."""
    scale = longest / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR)


def to_condition_map(array: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A uint8 map (H×W or H×W×3) as an RGB image of `size`: what the ControlNet tools take as input."""
    image = Image.fromarray(array).convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return image


@dataclass(frozen=True)
class DetectedMap:
    """A detector's condition map: RGB at the size asked for, as the ControlNets take it, and why it ran degraded.

    Made by one function per condition in the perception modules, which both the perception tool and the
    generate_from_<condition> tool call; subclasses add what the detector found (lines, people, shares).
    """

    image: Image.Image
    degraded: str | None


def batch_to(batch: Mapping[str, Any], device: Any, dtype: Any) -> dict[str, Any]:
    """Processor outputs moved to `device`, floating tensors cast to the component's dtype (ids stay integers)."""
    import torch

    moved: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device=device, dtype=dtype) if value.is_floating_point() else value.to(device)
        moved[key] = value
    return moved


def inputs_for(batch: Mapping[str, Any], parts: Any, key: str) -> dict[str, Any]:
    """`batch_to` for the component `key` of a runtime `Parts`."""
    return batch_to(batch, parts.device_of(key), parts.dtype_of(key))


@contextmanager
def annotator_imports() -> Iterator[None]:
    """Import controlnet_aux pieces quietly (it warns about optional timm/mediapipe), or say how to install it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except ImportError as exc:
            raise ToolError(
                f"the annotators need controlnet_aux ({exc}); reinstall vchat, or: pip install controlnet-aux"
            ) from exc


def not_found(what: str, ref: ImageRef, hint: str = "") -> ToolError:
    """The plain 'no X found in imgN' error the model hears when a detector finds nothing."""
    return ToolError(f"no {what} found in {ref.handle}{f' ({hint})' if hint else ''}")


def save(
    ctx: ToolContext, tool: str, image: Image.Image, ref: ImageRef, params: Mapping[str, Any], **extra: Any
) -> ImageRef:
    """Save a tool output whose only parent is the input image."""
    return ctx.save_image(image, tool=tool, params=dict(params), parents=(ref.handle,), **extra)


def percent(share: float) -> str:
    """A share of the image as a short percentage ("12%", "0.4%")."""
    value = share * 100
    return f"{value:.1f}%" if 0 < value < 10 else f"{value:.0f}%"
