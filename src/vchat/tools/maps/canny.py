"""canny_edges: Canny edge map of an image (OpenCV, no model weights); also the canny ControlNet's detector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from vchat.errors import ToolError
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.util import DetectedMap, rgb

# ControlNet's own annotator thresholds for the canny model.
LOW, HIGH = 100, 200


@dataclass(frozen=True)
class EdgeMap(DetectedMap):
    """White Canny edges on black, and the share of pixels that are edges (0..1)."""

    share: float


def canny_edges(
    image: Image.Image, size: tuple[int, int], low: int = LOW, high: int = HIGH
) -> tuple[Image.Image, float]:
    """One-channel Canny edges of `image` at `size`, and the share of edge pixels (0..1)."""
    import cv2
    import numpy as np

    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    # rgb(): transparency flattened onto white, as every detector does, so hidden colours draw no edges.
    edges = cv2.Canny(np.asarray(rgb(image).convert("L")), low, high)
    return Image.fromarray(edges, "L"), np.count_nonzero(edges) / edges.size


def canny_map(image: Image.Image, size: tuple[int, int], low: int = LOW, high: int = HIGH) -> EdgeMap:
    """Canny edges of `image` brought to `size` first, so edges stay one pixel wide at the size they are used at."""
    edges, share = canny_edges(image, size, low, high)
    return EdgeMap(edges.convert("RGB"), None, share)


class CannyEdges(Tool):
    """White edges on black, the condition image the canny ControlNet expects."""

    name = "canny_edges"
    description = (
        "Find the edges of an image with the Canny detector; returns a black and white edge map "
        "(useful as input for generate_from_canny)."
    )
    inputs = (
        Field("image", "image", "the image to detect edges in"),
        Field("low", "int", "lower hysteresis threshold", default=LOW, minimum=0, maximum=1000),
        Field("high", "int", "upper hysteresis threshold", default=HIGH, minimum=0, maximum=1000),
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Detect edges and save the map as a new image."""
        ref = args["image"]
        low, high = int(args["low"]), int(args["high"])
        if low > high:
            raise ToolError(f"low threshold ({low}) must not exceed high threshold ({high})")
        image = ctx.load_image(ref)
        # One channel: the map is black and white, and a third of the bytes encodes 2-3x faster.
        edges, share = canny_edges(image, image.size, low, high)
        out = ctx.save_image(edges, tool=self.name, params={"low": low, "high": high}, parents=(ref.handle,))
        percent = share * 100
        return ToolResult(f"Canny edges of {ref.handle} (thresholds {low}/{high}, {percent:.1f}% edge pixels).", [out])
