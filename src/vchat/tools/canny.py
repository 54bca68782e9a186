"""canny_edges: Canny edge map of an image (OpenCV, no model weights)."""

from __future__ import annotations

from typing import Any

from vchat.errors import ToolError
from vchat.tools.base import Field, Tool, ToolContext, ToolResult


class CannyEdges(Tool):
    """White edges on black, the condition image the canny ControlNet expects."""

    name = "canny_edges"
    description = (
        "Find the edges of an image with the Canny detector; returns a black and white edge map "
        "(useful as input for generate_from_canny)."
    )
    inputs = (
        Field("image", "image", "the image to detect edges in"),
        Field("low", "int", "lower hysteresis threshold", default=100, minimum=0, maximum=1000),
        Field("high", "int", "upper hysteresis threshold", default=200, minimum=0, maximum=1000),
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Detect edges and save the map as a new image."""
        import cv2
        import numpy as np
        from PIL import Image

        ref = args["image"]
        low, high = int(args["low"]), int(args["high"])
        if low > high:
            raise ToolError(f"low threshold ({low}) must not exceed high threshold ({high})")
        gray = np.asarray(ctx.load_image(ref).convert("L"))
        edges = cv2.Canny(gray, low, high)
        out = ctx.save_image(
            Image.fromarray(edges, "L").convert("RGB"),
            tool=self.name,
            params={"low": low, "high": high},
            parents=(ref.handle,),
        )
        share = float((edges > 0).mean()) * 100
        return ToolResult(f"Canny edges of {ref.handle} (thresholds {low}/{high}, {share:.1f}% edge pixels).", [out])
