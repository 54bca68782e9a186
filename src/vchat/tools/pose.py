"""detect_pose: human body keypoints (OpenPose via controlnet_aux, `annotators`) drawn as a pose skeleton."""

from __future__ import annotations

from typing import Any

from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.perception_util import annotator_imports, not_found, rgb, save, to_condition_map, working_size

KEYS = ("annotators.openpose",)


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
        """Detect bodies at the working resolution and draw them there (stroke widths are in pixels)."""
        import numpy as np

        with annotator_imports():
            from controlnet_aux.open_pose import draw_poses

        ref = args["image"]
        image = rgb(ctx.load_image(ref))
        width, height = working_size(image.size)
        pixels = np.asarray(image.resize((width, height)))
        # Bodies only, as Visual ChatGPT and the openpose ControlNet do: hands and faces triple the time.
        outcome = ctx.models.run(lambda parts: parts["annotators.openpose"].detect_poses(pixels), *KEYS, tool=self.name)
        poses = outcome.value
        if not poses:
            raise not_found("person", ref)
        canvas = draw_poses(poses, height, width, draw_body=True, draw_hand=False, draw_face=False)
        out = save(ctx, self.name, to_condition_map(canvas, image.size), ref, {})
        people = "1 person" if len(poses) == 1 else f"{len(poses)} people"
        return ToolResult(f"Pose of {people} found in {ref.handle}.", [out], degraded=outcome.degraded)
