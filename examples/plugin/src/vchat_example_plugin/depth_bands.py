"""depth_bands: the image split into bands by distance, from the depth model vchat's runtime manages."""

from __future__ import annotations

from typing import Any

from vchat.tools.base import Field, Tool, ToolContext, ToolResult

# Components of vchat's runtime (its `[models]` table says which checkpoint): loaded on first use, shared.
KEYS = ("depth", "depth.processor")


class DepthBands(Tool):
    """Quantise estimated depth into a few grey bands, near (white) to far (black)."""

    name = "depth_bands"
    description = "Split an image into bands by distance (near is white, far is black), using the depth model."
    brief = "depth in a few grey bands"
    inputs = (
        Field("image", "image", "the image"),
        Field("bands", "int", "how many distance bands", default=4, minimum=2, maximum=16),
    )
    components = KEYS  # tells vchat (and `vchat models`) which weights the tool needs

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Predict depth through the runtime, quantise it, save it."""
        import numpy as np
        import torch
        from PIL import Image

        ref, bands = args["image"], int(args["bands"])
        image = ctx.load_image(ref).convert("RGB")

        def predict(parts: Any) -> np.ndarray:
            batch = parts["depth.processor"](images=image, return_tensors="pt")
            model = parts["depth"]
            batch = {k: v.to(model.device, model.dtype) if v.is_floating_point() else v for k, v in batch.items()}
            with torch.inference_mode():
                depth = model(**batch).predicted_depth[0]
            return np.asarray(depth.float().cpu().numpy(), dtype=np.float32)

        outcome = ctx.models.run(predict, *KEYS, tool=self.name)
        depth = outcome.value
        low, high = float(depth.min()), float(depth.max())
        near = (depth - low) / (high - low) if high - low > 1e-6 else np.zeros_like(depth)
        levels = np.minimum((near * bands).astype(np.int32), bands - 1)
        grey = (levels * (255 // max(bands - 1, 1))).clip(0, 255).astype(np.uint8)
        out_image = Image.fromarray(grey, "L").resize(image.size, Image.Resampling.NEAREST)
        out = ctx.save_image(out_image, tool=self.name, params={"bands": bands}, parents=(ref.handle,))
        return ToolResult(f"{ref.handle} in {bands} depth bands (white is near)", [out], degraded=outcome.degraded)
