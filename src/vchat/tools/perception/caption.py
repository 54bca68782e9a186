"""caption_image: a one-line description of an image (BLIP); `caption` is also what captions images on attach."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.util import clean_text, inputs_for, rgb

if TYPE_CHECKING:
    from PIL import Image

KEYS = ("blip_caption", "blip_caption.processor")
MAX_NEW_TOKENS = 30


def caption(ctx: ToolContext, image: Image.Image, *, tool: str = "caption_image") -> str:
    """BLIP's caption of an image as one clean line; "" when the model produced none (loads BLIP on first use)."""
    return _caption(ctx, image, tool)[0]


def _caption(ctx: ToolContext, image: Image.Image, tool: str) -> tuple[str, str | None]:
    import torch

    picture = rgb(image)

    def run(parts: Any) -> str:
        processor = parts["blip_caption.processor"]
        inputs = inputs_for(processor(images=picture, return_tensors="pt"), parts, "blip_caption")
        with torch.inference_mode():
            ids = parts["blip_caption"].generate(**inputs, max_new_tokens=MAX_NEW_TOKENS)
        return clean_text(processor.decode(ids[0], skip_special_tokens=True))

    outcome = ctx.models.run(run, *KEYS, tool=tool)
    return outcome.value, outcome.degraded


class CaptionImage(Tool):
    """Describe what an image shows in one sentence."""

    name = "caption_image"
    brief = "one-sentence description of an image; use it to learn what an image shows"
    description = (
        "Describe what an image shows in one short sentence. Use it to know what is in an image before answering "
        "or editing; returns text."
    )
    inputs = (Field("image", "image", "the image to describe"),)
    output = "text"
    components = KEYS

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Caption the image; an empty caption is reported as such."""
        ref = args["image"]
        text, degraded = _caption(ctx, ctx.load_image(ref), self.name)
        if not text:
            return ToolResult(f"The captioning model produced no caption for {ref.handle}.", degraded=degraded)
        return ToolResult(f"Caption of {ref.handle}: {text}.", degraded=degraded)
