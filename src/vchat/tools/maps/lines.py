"""detect_lines: straight line segments (M-LSD via controlnet_aux, `annotators`), drawn white on black.

`line_map` is also the detector of generate_from_lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.util import (
    DetectedMap,
    annotator_imports,
    not_found,
    rgb,
    save,
    to_condition_map,
    working_size,
)

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

KEYS = ("annotators.mlsd",)
MODEL_SIDE = 512  # M-LSD large was trained on 512×512 inputs
TOP_K = 200  # line centres considered, as in controlnet_aux
MIN_LENGTH = 0.1  # ControlNet's distance threshold: keep every segment longer than this (map pixels)
THRESHOLD = 0.1  # ControlNet's score threshold: the minimum line confidence


def predict_lines(model: Any, pixels: np.ndarray, score_threshold: float) -> np.ndarray:
    """Segments (x0, y0, x1, y1) as fractions of the image, from M-LSD's centre and displacement maps.

    Written out instead of calling controlnet_aux's `MLSDdetector`, which swallows every exception (and hence
    reports a crash or an empty result as a black map), and whose `pred_lines` raises when nothing is found.
    """
    import cv2
    import numpy as np
    import torch

    with annotator_imports():
        from controlnet_aux.mlsd.utils import deccode_output_score_and_ptss

    resized = cv2.resize(pixels, (MODEL_SIDE, MODEL_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    batch = np.concatenate([resized, np.ones((MODEL_SIDE, MODEL_SIDE, 1), np.float32)], axis=-1)
    tensor = torch.from_numpy(batch.transpose(2, 0, 1)[None] / 127.5 - 1.0)
    tensor = tensor.to(next(model.parameters()).device)
    with torch.inference_mode():
        centres, scores, displacement = deccode_output_score_and_ptss(model(tensor), TOP_K, 3)
    map_h, map_w = displacement.shape[:2]
    lengths = np.sqrt(((displacement[:, :, :2] - displacement[:, :, 2:]) ** 2).sum(axis=-1))
    segments = []
    for (y, x), score in zip(centres, scores, strict=True):
        if score > score_threshold and lengths[y, x] > MIN_LENGTH:
            dx0, dy0, dx1, dy1 = displacement[y, x]
            segments.append(((x + dx0) / map_w, (y + dy0) / map_h, (x + dx1) / map_w, (y + dy1) / map_h))
    return np.asarray(segments, dtype=np.float32).reshape(-1, 4)


@dataclass(frozen=True)
class LineMap(DetectedMap):
    """White straight lines on black, and how many segments were found (0: the map is black)."""

    count: int


def line_map(
    ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str, threshold: float = THRESHOLD
) -> LineMap:
    """Detect segments, draw them at the working resolution of `size`, bring the map to `size`."""
    import cv2
    import numpy as np

    pixels = np.asarray(rgb(image))
    outcome = ctx.models.run(
        lambda parts: predict_lines(parts["annotators.mlsd"].model, pixels, threshold), *KEYS, tool=tool
    )
    segments = outcome.value
    # Drawn 1 px wide at ControlNet's working resolution, then scaled, so line weight matches its training data.
    width, height = working_size(size)
    canvas = np.zeros((height, width), np.uint8)
    for x0, y0, x1, y1 in segments * np.array([width, height, width, height], np.float32):
        cv2.line(canvas, (int(x0), int(y0)), (int(x1), int(y1)), 255, 1)
    return LineMap(to_condition_map(canvas, size), outcome.degraded, len(segments))


class DetectLines(Tool):
    """Straight lines for the M-LSD ControlNet (rooms, buildings, furniture)."""

    name = "detect_lines"
    description = (
        "Find the straight lines of an image with M-LSD (good for rooms, buildings, furniture); returns white "
        "lines on black, usable as input for generate_from_lines."
    )
    inputs = (
        Field("image", "image", "the image to find straight lines in"),
        Field(
            "threshold", "float", "minimum line confidence; lower finds more", default=THRESHOLD, minimum=0, maximum=1
        ),
    )
    components = KEYS

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Detect and draw the lines at the input's size; finding none is an error, not a black map."""
        ref = args["image"]
        threshold = float(args["threshold"])
        image = rgb(ctx.load_image(ref))
        lines = line_map(ctx, image, image.size, self.name, threshold)
        if lines.count == 0:
            raise not_found("straight lines", ref, f"threshold {threshold:g}")
        out = save(ctx, self.name, lines.image, ref, {"threshold": threshold})
        return ToolResult(f"{lines.count} straight lines found in {ref.handle}.", [out], degraded=lines.degraded)
