"""segment_semantic: a per-pixel class map (UperNet, ADE20K classes) coloured with the ADE20K palette."""

from __future__ import annotations

from typing import Any

from PIL import Image

from vchat.tools.ade20k import ADE20K_PALETTE
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.perception_util import DETECT_RESOLUTION, inputs_for, percent, rgb, save

KEYS = ("segmentation", "segmentation.processor")
LISTED = 5  # classes named in the observation, largest first


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
        """Class logits upsampled to a bounded working size (150 channels at full size can take gigabytes)."""
        import numpy as np
        import torch

        ref = args["image"]
        image = rgb(ctx.load_image(ref))
        scale = min(1.0, DETECT_RESOLUTION / min(image.size))
        work = (max(1, round(image.height * scale)), max(1, round(image.width * scale)))

        def run(parts: Any) -> tuple[np.ndarray, dict[int, str]]:
            model = parts["segmentation"]
            batch = parts["segmentation.processor"](images=image, return_tensors="pt")
            with torch.inference_mode():
                logits = model(**inputs_for(batch, parts, "segmentation")).logits
                logits = torch.nn.functional.interpolate(logits.float(), size=work, mode="bilinear")
                labels = logits[0].argmax(dim=0).cpu().numpy()
            return labels, dict(model.config.id2label)

        outcome = ctx.models.run(run, *KEYS, tool=self.name)
        labels, names = outcome.value
        palette = np.zeros((256, 3), np.uint8)
        palette[: len(ADE20K_PALETTE)] = ADE20K_PALETTE
        coloured = palette[labels.clip(0, 255)]
        # Nearest-neighbour scaling keeps every pixel one of the palette's colours, as the ControlNet expects.
        out_image = Image.fromarray(coloured, "RGB").resize(image.size, Image.Resampling.NEAREST)
        out = save(ctx, self.name, out_image, ref, {})
        ids, counts = np.unique(labels, return_counts=True)
        order = np.argsort(-counts)[:LISTED]
        main = ", ".join(
            f"{names.get(int(ids[i]), f'class {ids[i]}')} {percent(counts[i] / labels.size)}" for i in order
        )
        text = f"Segmentation of {ref.handle} into {len(ids)} classes; largest: {main}."
        return ToolResult(text, [out], degraded=outcome.degraded)
