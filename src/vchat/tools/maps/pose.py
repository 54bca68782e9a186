"""detect_pose: human body keypoints (OpenPose via controlnet_aux, `annotators`) drawn as a pose skeleton.

`pose_map` is also the detector of generate_from_pose.
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
    from PIL import Image

KEYS = ("annotators.openpose",)


@dataclass(frozen=True)
class PoseMap(DetectedMap):
    """Coloured stick figures on black, and how many people were found (0: the map is black)."""

    people: int


def pose_map(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> PoseMap:
    """Detect bodies at the working resolution of `size` and draw them there (stroke widths are in pixels)."""
    import numpy as np

    with annotator_imports():
        from controlnet_aux.open_pose import draw_poses

    width, height = working_size(size)
    pixels = np.asarray(rgb(image).resize((width, height)))
    # Bodies only, as Visual ChatGPT and the openpose ControlNet do: hands and faces triple the time.
    outcome = ctx.models.run(lambda parts: parts["annotators.openpose"].detect_poses(pixels), *KEYS, tool=tool)
    poses = outcome.value or []
    canvas = np.zeros((height, width, 3), np.uint8)
    if poses:
        canvas = draw_poses(poses, height, width, draw_body=True, draw_hand=False, draw_face=False)
    return PoseMap(to_condition_map(canvas, size), outcome.degraded, len(poses))


class DetectPose(Tool):
    """OpenPose skeletons for the openpose ControlNet."""

    name = "detect_pose"
    description = (
        "Find the body poses of the people in an image with OpenPose; returns coloured stick figures on black "
        "(usable as input for generate_from_pose) and says how many people were found."
    )
    inputs = (Field("image", "image", "the image with people in it"),)
    components = KEYS

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Draw the skeletons at the input's size; finding nobody is an error, not a black map."""
        ref = args["image"]
        image = rgb(ctx.load_image(ref))
        made = pose_map(ctx, image, image.size, self.name)
        if made.people == 0:
            raise not_found("person", ref)
        out = save(ctx, self.name, made.image, ref, {})
        people = "1 person" if made.people == 1 else f"{made.people} people"
        return ToolResult(f"Pose of {people} found in {ref.handle}.", [out], degraded=made.degraded)
