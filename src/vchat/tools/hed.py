"""detect_hed and detect_scribble: soft HED edges and scribble-like strokes (controlnet_aux HED, `annotators`)."""

from __future__ import annotations

from typing import Any, ClassVar

from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.perception_util import percent, rgb, save, to_condition_map, working_size

KEYS = ("annotators.hed",)


class _HedTool(Tool):
    inputs = (Field("image", "image", "the image to trace"),)
    components = KEYS
    scribble: ClassVar[bool] = False
    what: ClassVar[str] = ""

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Run HED at the working resolution and bring the map back to the input size."""
        import numpy as np

        ref = args["image"]
        image = rgb(ctx.load_image(ref))
        width, height = working_size(image.size)
        pixels = np.asarray(image.resize((width, height)))

        def run(parts: Any) -> Any:
            # Resolutions equal to the prepared size: controlnet_aux then does no resizing of its own.
            side = min(width, height)
            hed = parts["annotators.hed"]
            return hed(pixels, detect_resolution=side, image_resolution=side, output_type="np", scribble=self.scribble)

        outcome = ctx.models.run(run, *KEYS, tool=self.name)
        edges = np.asarray(outcome.value)
        out = save(ctx, self.name, to_condition_map(edges, image.size), ref, {})
        gray = edges.max(axis=-1) if edges.ndim == 3 else edges
        strong = float((gray >= 128).mean())
        text = f"{self.what} of {ref.handle} ({percent(strong)} of pixels on strong lines)."
        return ToolResult(text, [out], degraded=outcome.degraded)


class DetectHed(_HedTool):
    """Soft edge map for the HED ControlNet."""

    name = "detect_hed"
    description = (
        "Trace the soft edges of an image with HED (softer and more complete than canny_edges); returns a "
        "white-on-black edge map, usable as input for generate_from_hed."
    )
    what = "HED soft edges"


class DetectScribble(_HedTool):
    """Thick scribble-like strokes for the scribble ControlNet."""

    name = "detect_scribble"
    description = (
        "Turn an image into a rough white-on-black scribble of its main outlines; returns the scribble, "
        "usable as input for generate_from_scribble."
    )
    scribble = True
    what = "Scribble"
