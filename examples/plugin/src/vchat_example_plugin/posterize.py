"""posterize: fewer colour levels per channel, a poster look (no model)."""

from __future__ import annotations

from typing import Any

from PIL import ImageOps

from vchat.tools.base import Field, Tool, ToolContext, ToolResult


class Posterize(Tool):
    """Reduce each colour channel to a few levels."""

    name = "posterize"
    description = "Posterize an image: keep only a few levels per colour channel, for a flat poster look."
    brief = "poster look with few colour levels"
    inputs = (
        Field("image", "image", "the image to posterize"),
        Field("levels", "int", "levels per channel", default=4, minimum=2, maximum=64),
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Posterize the image and save the result with its lineage."""
        ref, levels = args["image"], int(args["levels"])
        image = ctx.load_image(ref).convert("RGB")
        bits = max(1, min(8, (levels - 1).bit_length()))  # PIL keeps 2**bits levels
        out = ctx.save_image(
            ImageOps.posterize(image, bits), tool=self.name, params={"levels": levels}, parents=(ref.handle,)
        )
        return ToolResult(f"{ref.handle} posterized to {2**bits} levels per channel", [out])
