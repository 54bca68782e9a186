"""Masks from text, then dilated: SAM 3 in the current tier; Grounding DINO + SAM in the classic one, else CLIPSeg."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.errors import ModelLoadError
from vchat.runtime.tiers import active_tier
from vchat.tools.base import ToolContext
from vchat.tools.perception import grounding, sam3

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

CLIPSEG = ("clipseg", "clipseg.processor")
GROUNDED = ("grounding_dino", "grounding_dino.processor", "sam", "sam.processor")
SAM3 = sam3.SAM3_KEYS
# Visual ChatGPT's threshold on CLIPSeg's sigmoid output (clipseg-rd64-refined).
CLIPSEG_THRESHOLD = 0.5
# A mask smaller than this share of the image is noise, not an object.
MIN_AREA = 0.001
# Inpainting needs a margin around the object so its outline and shadow go too (Visual ChatGPT padded ~20 px at 512).
DILATE_SHARE = 0.03


@dataclass
class ObjectMask:
    """A boolean mask (H x W, the image's size), how it was found, and a note when a fallback was used."""

    mask: np.ndarray
    method: str
    note: str | None = None
    unavailable: bool = False  # the method could not run at all (its weights are missing)

    @property
    def coverage(self) -> float:
        """Share of the image the mask covers (0..1)."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    @property
    def empty(self) -> bool:
        """True when nothing (or only specks) was found."""
        return self.coverage < MIN_AREA

    def image(self) -> Image.Image:
        """The mask as an L image (255 = repaint), the form inpainting pipelines take."""
        import numpy as np
        from PIL import Image

        return Image.fromarray(np.where(self.mask, 255, 0).astype(np.uint8), "L")


def find_mask(ctx: ToolContext, image: Image.Image, text: str, tool: str) -> ObjectMask:
    """The dilated mask of `text` in `image`, for the editing tools.

    Current tier: SAM 3 (every instance of the concept). Classic tier: grounded (boxes then SAM) when available,
    CLIPSeg otherwise. SAM 3 has no fallback: its missing weights are the user's to fetch, said in one line.
    """
    if active_tier(ctx.settings) == "current":
        concept = sam3_mask(ctx, image, text, tool)
        if not concept.empty:
            concept.mask = dilate(concept.mask, DILATE_SHARE)
        return concept
    found = _grounded(ctx, image, text, tool)
    if found is None or found.unavailable:
        fallback = clipseg_mask(ctx, image, text, tool)
        notes = [found.note if found is not None else None, fallback.note]
        fallback.note = "; ".join(n for n in notes if n) or None
        found = fallback
    if not found.empty:
        found.mask = dilate(found.mask, DILATE_SHARE)
    return found


def _grounded(ctx: ToolContext, image: Image.Image, text: str, tool: str) -> ObjectMask | None:
    """Grounding DINO boxes + SAM masks (`grounding`); a CLIPSeg fallback note when their weights are missing."""
    import numpy as np

    notes: list[str] = []
    try:
        boxes = grounding.detect_boxes(ctx, image, text, tool=tool, notes=notes)
        if not boxes:
            return ObjectMask(np.zeros((image.height, image.width), dtype=bool), "grounding_dino")
        mask = grounding.segment_boxes(ctx, image, boxes, tool=tool, notes=notes)
    except ModelLoadError as exc:
        # Grounding weights missing: CLIPSeg still gives a usable (coarser) mask, and the note says so.
        note = f"Grounding DINO + SAM could not run ({exc}); used CLIPSeg"
        return ObjectMask(np.zeros((image.height, image.width), dtype=bool), "grounding_dino", note, unavailable=True)
    found = np.asarray(mask.convert("L").resize(image.size)) > 127
    return ObjectMask(found, "grounding_dino+sam", "; ".join(notes) or None)


def sam3_mask(
    ctx: ToolContext, image: Image.Image, text: str, tool: str, threshold: float = sam3.SAM3_THRESHOLD
) -> ObjectMask:
    """The undilated union mask of every instance SAM 3 finds of `text` (comma-separated concepts) in `image`."""
    found = sam3.find_instances(ctx, image, text, threshold=threshold, tool=tool)
    return ObjectMask(found.union > 0, "sam3", found.degraded)


def clipseg_mask(ctx: ToolContext, image: Image.Image, text: str, tool: str) -> ObjectMask:
    """CLIPSeg's probability map of `text`, resized to the image and thresholded."""
    import torch

    def predict(parts: Any) -> np.ndarray:
        processor, model = parts["clipseg.processor"], parts["clipseg"]
        inputs = processor(text=[text], images=[image.convert("RGB")], padding="max_length", return_tensors="pt")
        inputs = {k: v.to(parts.device_of("clipseg")) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(parts.dtype_of("clipseg"))
        with torch.no_grad():
            logits = model(**inputs).logits
        return torch.sigmoid(logits.float()).reshape(logits.shape[-2:]).cpu().numpy()

    outcome = ctx.models.run(predict, *CLIPSEG, tool=tool)
    probability = _resize_mask(outcome.value, image.size)
    return ObjectMask(probability > CLIPSEG_THRESHOLD, "clipseg", outcome.degraded)


def _resize_mask(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2
    import numpy as np

    return np.asarray(cv2.resize(values.astype(np.float32), size, interpolation=cv2.INTER_LINEAR))


def dilate(mask: np.ndarray, share: float) -> np.ndarray:
    """Grow a mask by `share` of the image's long side (at least 2 pixels)."""
    import cv2
    import numpy as np

    radius = max(2, round(share * max(mask.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return np.asarray(cv2.dilate(mask.astype(np.uint8), kernel) > 0)
