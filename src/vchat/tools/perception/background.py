"""remove_background: keep the main subject on a transparent background (CLIPSeg finds it, SAM outlines it).

Why this pair: the runtime has no salient-object model. CLIPSeg alone gives a blurry 352-px heat map, and SAM
alone needs a prompt (its automatic masks have no notion of "main"). So CLIPSeg, asked for the main object,
says *where* the subject is (the connected hot region around its peak), and its box prompts SAM, which draws
the crisp outline. The alpha is SAM's mask probability, so edges keep a pixel or two of softness.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vchat.errors import ToolError
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.perception.grounding import SAM_KEYS, Box, mask_logits
from vchat.tools.perception.segment import cutout, soft_alpha
from vchat.tools.util import fit_longest, inputs_for, percent, rgb, save

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

CLIPSEG_KEYS = ("clipseg", "clipseg.processor")
PROMPT = "the main object"
HEAT_SIDE = 512  # the heat map is compared at this size (CLIPSeg's own output is 352 px)
MIN_PEAK = 0.05  # below this CLIPSeg sees no subject at all
REGION = 0.5  # the subject's region: pixels at least this share of the peak, connected to it


def subject_heat(
    ctx: ToolContext, image: Image.Image, tool: str, prompt: str = PROMPT
) -> tuple[np.ndarray, str | None]:
    """CLIPSeg's probability (0..1) that each pixel shows `prompt`, at the image's aspect ratio (≤ HEAT_SIDE)."""
    import cv2
    import numpy as np
    import torch

    picture = rgb(image)
    work = fit_longest(picture, HEAT_SIDE).size

    def run(parts: Any) -> np.ndarray:
        batch = parts["clipseg.processor"](text=[prompt], images=[picture], padding=True, return_tensors="pt")
        with torch.inference_mode():
            logits = parts["clipseg"](**inputs_for(batch, parts, "clipseg")).logits
        # One image and prompt: (h, w) or (1, h, w) depending on the library version.
        return np.asarray(logits.float().sigmoid().reshape(-1, *logits.shape[-2:])[0].cpu().numpy())

    outcome = ctx.models.run(run, *CLIPSEG_KEYS, tool=tool)
    return cv2.resize(outcome.value, work, interpolation=cv2.INTER_LINEAR), outcome.degraded


def subject_box(heat: np.ndarray, size: tuple[int, int]) -> Box | None:
    """The box (in pixels of `size`) of the hot region connected to the heat map's peak; None if nothing is hot."""
    import cv2
    import numpy as np

    peak = float(heat.max())
    if peak < MIN_PEAK:
        return None
    _, components = cv2.connectedComponents((heat >= REGION * peak).astype(np.uint8), connectivity=8)
    y, x = np.unravel_index(int(heat.argmax()), heat.shape)
    ys, xs = np.nonzero(components == components[y, x])
    sx, sy = size[0] / heat.shape[1], size[1] / heat.shape[0]
    return (float(xs.min() * sx), float(ys.min() * sy), float((xs.max() + 1) * sx), float((ys.max() + 1) * sy))


class RemoveBackground(Tool):
    """Cut the main subject out onto transparency."""

    name = "remove_background"
    brief = "main subject on a transparent background"
    description = (
        "Remove the background of an image, keeping its main subject; returns a PNG with a transparent "
        "background. To keep a specific object instead, use segment_object with output=cutout."
    )
    inputs = (Field("image", "image", "the image whose background to remove"),)
    components = (*CLIPSEG_KEYS, *SAM_KEYS)

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Locate the subject with CLIPSeg, outline it with SAM, use SAM's mask as alpha."""
        ref = args["image"]
        image = ctx.load_image(ref)
        heat, degraded = subject_heat(ctx, image, self.name)
        box = subject_box(heat, image.size)
        if box is None:
            raise ToolError(f"no main subject found in {ref.handle}; name it and use segment_object instead")
        ctx.check_cancelled()
        notes: list[str] = [degraded] if degraded else []
        logits = mask_logits(ctx, image, [box], tool=self.name, notes=notes)
        alpha = soft_alpha(logits)
        share = float((logits > 0).mean())
        if share == 0:
            raise ToolError(f"SAM found no subject inside the main region of {ref.handle}")
        out = save(ctx, self.name, cutout(image, alpha), ref, {})
        text = f"Background removed from {ref.handle}: the subject kept covers {percent(share)} of the image."
        return ToolResult(text, [out], degraded=notes[0] if notes else None)
