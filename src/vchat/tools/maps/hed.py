"""detect_hed and detect_scribble: soft HED edges and scribble-like strokes (controlnet_aux HED, `annotators`).

`hed_map` is also the detector of generate_from_hed and generate_from_scribble.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.util import DetectedMap, percent, rgb, save, to_condition_map, working_size

if TYPE_CHECKING:
    from PIL import Image

KEYS = ("annotators.hed",)


@dataclass(frozen=True)
class HedMap(DetectedMap):
    """White soft edges (or scribble strokes) on black, and the share of pixels on strong lines (0..1)."""

    strong: float


def hed_map(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str, scribble: bool = False) -> HedMap:
    """Run HED at the working resolution of `size` and bring the map to `size`."""
    import numpy as np

    width, height = working_size(size)
    pixels = np.asarray(rgb(image).resize((width, height)))

    def run(parts: Any) -> Any:
        # Resolutions equal to the prepared size: controlnet_aux then does no resizing of its own.
        side = min(width, height)
        hed = parts["annotators.hed"]
        return hed(pixels, detect_resolution=side, image_resolution=side, output_type="np", scribble=scribble)

    outcome = ctx.models.run(run, *KEYS, tool=tool)
    edges = np.asarray(outcome.value)
    gray = edges.max(axis=-1) if edges.ndim == 3 else edges
    return HedMap(to_condition_map(edges, size), outcome.degraded, float((gray >= 128).mean()))


class _HedTool(Tool):
    inputs = (Field("image", "image", "the image to trace"),)
    components = KEYS
    scribble: ClassVar[bool] = False
    what: ClassVar[str] = ""

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Trace the image at the working resolution and bring the map back to the input size."""
        ref = args["image"]
        image = rgb(ctx.load_image(ref))
        edges = hed_map(ctx, image, image.size, self.name, self.scribble)
        out = save(ctx, self.name, edges.image, ref, {})
        text = f"{self.what} of {ref.handle} ({percent(edges.strong)} of pixels on strong lines)."
        return ToolResult(text, [out], degraded=edges.degraded)


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
