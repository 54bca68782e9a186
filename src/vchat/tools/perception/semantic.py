"""segment_semantic: a per-pixel class map (UperNet, ADE20K classes) coloured with the ADE20K palette.

`segmentation_map` is also the detector of generate_from_segmentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.perception.ade20k import ADE20K_PALETTE
from vchat.tools.util import DETECT_RESOLUTION, DetectedMap, inputs_for, percent, rgb, save

KEYS = ("segmentation", "segmentation.processor")
LISTED = 5  # classes named in the observation, largest first


@dataclass(frozen=True)
class SegmentationMap(DetectedMap):
    """The ADE20K-coloured class map, and the classes found as (name, share of the image), largest first."""

    classes: tuple[tuple[str, float], ...]


def segmentation_map(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> SegmentationMap:
    """Class logits upsampled to a bounded working size (150 channels at full size can take gigabytes)."""
    import numpy as np
    import torch

    image = rgb(image)
    scale = min(1.0, DETECT_RESOLUTION / min(size))
    work = (max(1, round(size[1] * scale)), max(1, round(size[0] * scale)))

    def run(parts: Any) -> tuple[np.ndarray, dict[int, str]]:
        model = parts["segmentation"]
        batch = parts["segmentation.processor"](images=image, return_tensors="pt")
        with torch.inference_mode():
            logits = model(**inputs_for(batch, parts, "segmentation")).logits
            logits = torch.nn.functional.interpolate(logits.float(), size=work, mode="bilinear")
            labels = logits[0].argmax(dim=0).cpu().numpy()
        return labels, dict(model.config.id2label)

    outcome = ctx.models.run(run, *KEYS, tool=tool)
    labels, names = outcome.value
    # Classes beyond the palette (another checkpoint's) stay black rather than borrowing an ADE20K colour.
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(ADE20K_PALETTE)] = ADE20K_PALETTE
    coloured = palette[labels.clip(0, 255)]
    # Nearest-neighbour scaling keeps every pixel one of the palette's colours, as the ControlNet expects.
    made = Image.fromarray(coloured, "RGB").resize(size, Image.Resampling.NEAREST)
    ids, counts = np.unique(labels, return_counts=True)
    classes = tuple(
        (names.get(int(ids[i]), f"class {ids[i]}"), float(counts[i] / labels.size)) for i in np.argsort(-counts)
    )
    return SegmentationMap(made, outcome.degraded, classes)


class SegmentSemantic(Tool):
    """ADE20K semantic segmentation for the seg ControlNet."""

    name = "segment_semantic"
    description = (
        "Label every pixel of an image with one of 150 scene classes (wall, sky, person, car…); returns the "
        "colour-coded class map (usable as input for generate_from_segmentation) and names the main classes."
    )
    inputs = (Field("image", "image", "the image to segment"),)
    components = KEYS

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Segment at the input's size and name the largest classes."""
        ref = args["image"]
        image = rgb(ctx.load_image(ref))
        made = segmentation_map(ctx, image, image.size, self.name)
        out = save(ctx, self.name, made.image, ref, {})
        main = ", ".join(f"{name} {percent(share)}" for name, share in made.classes[:LISTED])
        text = f"Segmentation of {ref.handle} into {len(made.classes)} classes; largest: {main}."
        return ToolResult(text, [out], degraded=made.degraded)
