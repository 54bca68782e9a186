"""estimate_depth and estimate_normals: a MiDaS-style depth map and the normal map derived from it.

Depth comes from DPT in the classic tier and Depth Anything V2 in the current one (both give relative inverse
depth, bigger is nearer). Normals stay on DPT in both: the normal ControlNet was trained on MiDaS-derived normals,
and the gradient scale below was fit to them. `depth_map` and `normals_map` are also the detectors of
generate_from_depth and generate_from_normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.runtime.tiers import active_tier, lineage
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.util import DetectedMap, inputs_for, rgb, save, to_condition_map

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

KEYS = ("depth", "depth.processor")
CURRENT_KEYS = ("depth_anything", "depth_anything.processor")
# ControlNet's normal maps: x/y gradients of MiDaS depth against a constant z of 2π; pixels in the farthest
# part of the depth range count as background (flat, facing the camera). Values of the sd-controlnet-normal card.
NORMAL_Z = 2 * 3.141592653589793
BACKGROUND = 0.4


def depth_model(ctx: ToolContext) -> str:
    """The model key depth comes from in the active tier."""
    return CURRENT_KEYS[0] if active_tier(ctx.settings) == "current" else KEYS[0]


def predict_depth(
    ctx: ToolContext, image: Image.Image, tool: str, model: str | None = None
) -> tuple[np.ndarray, str | None]:
    """Relative inverse depth (bigger is nearer) at the model's own resolution, as float32 H×W.

    `model` is `depth` (DPT) or `depth_anything`; by default the active tier's.
    """
    import numpy as np
    import torch

    key = model or depth_model(ctx)

    def run(parts: Any) -> np.ndarray:
        batch = parts[f"{key}.processor"](images=rgb(image), return_tensors="pt")
        with torch.inference_mode():
            predicted = parts[key](**inputs_for(batch, parts, key)).predicted_depth
        # Batch of one: (1, h, w). Not post-processed: the caller resizes, in one place, to what it needs.
        return np.asarray(predicted[0].float().cpu().numpy(), dtype=np.float32)

    outcome = ctx.models.run(run, key, f"{key}.processor", tool=tool)
    return outcome.value, outcome.degraded


def normalised(depth: np.ndarray) -> np.ndarray:
    """Depth scaled to 0..1 (a flat map becomes all zeros)."""
    import numpy as np

    low, high = float(depth.min()), float(depth.max())
    if not np.isfinite(high - low) or high - low < 1e-6:
        return np.zeros_like(depth, dtype=np.float32)
    return ((depth - low) / (high - low)).astype(np.float32)


def normal_map(depth: np.ndarray) -> np.ndarray:
    """ControlNet's normal map (uint8 RGB) from MiDaS depth at the model's resolution, where its scale was fit."""
    import cv2
    import numpy as np

    near = normalised(depth)
    x = cv2.Sobel(depth, cv2.CV_32F, 1, 0, ksize=3)
    y = cv2.Sobel(depth, cv2.CV_32F, 0, 1, ksize=3)
    x[near < BACKGROUND] = 0
    y[near < BACKGROUND] = 0
    z = np.full_like(x, NORMAL_Z)
    normal = np.stack([x, y, z], axis=2)
    normal = normal / np.sqrt((normal**2).sum(axis=2, keepdims=True))
    return np.asarray((normal * 127.5 + 127.5).clip(0, 255), dtype=np.uint8)


@dataclass(frozen=True)
class DepthMap(DetectedMap):
    """Grey depth (near is white, far is black), and whether it is flat (no variation found: all black)."""

    flat: bool


def depth_map(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> DepthMap:
    """Predict depth, upsample it smoothly to `size` (the one resize), scale to 0..255."""
    import cv2
    import numpy as np

    depth, degraded = predict_depth(ctx, image, tool)
    near = normalised(cv2.resize(depth, size, interpolation=cv2.INTER_CUBIC))
    grey = (near * 255).round().astype(np.uint8)
    return DepthMap(to_condition_map(grey, size), degraded, flat=not near.any())


def normals_map(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> DetectedMap:
    """Normals at the depth model's resolution (the gradients' scale depends on it), then resized to `size`."""
    depth, degraded = predict_depth(ctx, image, tool, model=KEYS[0])
    return DetectedMap(to_condition_map(normal_map(depth), size), degraded)


class EstimateDepth(Tool):
    """A depth map for the depth ControlNet."""

    name = "estimate_depth"
    description = (
        "Estimate the depth of an image with DPT; returns a grayscale depth map (near is white, far is black), "
        "usable as input for generate_from_depth."
    )
    inputs = (Field("image", "image", "the image to estimate depth for"),)
    components = (*KEYS, *CURRENT_KEYS)

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """The depth map at the input's size; a flat one is said to be flat."""
        ref = args["image"]
        image = rgb(ctx.load_image(ref))
        made = depth_map(ctx, image, image.size, self.name)
        out = save(ctx, self.name, made.image, ref, lineage(ctx.settings, depth_model(ctx)))
        if made.flat:
            return ToolResult(
                f"Depth map of {ref.handle}: no depth variation found (the map is flat).", [out], made.degraded
            )
        return ToolResult(f"Depth map of {ref.handle} (near is white, far is black).", [out], degraded=made.degraded)


class EstimateNormals(Tool):
    """A surface normal map for the normal ControlNet."""

    name = "estimate_normals"
    description = (
        "Estimate the surface orientation of an image from its DPT depth; returns a colour normal map, "
        "usable as input for generate_from_normal."
    )
    inputs = (Field("image", "image", "the image to estimate normals for"),)
    components = KEYS

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """The normal map at the input's size, from its estimated depth."""
        ref = args["image"]
        image = rgb(ctx.load_image(ref))
        made = normals_map(ctx, image, image.size, self.name)
        out = save(ctx, self.name, made.image, ref, {})
        return ToolResult(f"Normal map of {ref.handle} (from its estimated depth).", [out], degraded=made.degraded)
