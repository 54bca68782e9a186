"""The eight generate_from_<condition> tools: a new image that follows a condition map (ControlNet on SD 1.5)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vchat.errors import ToolError
from vchat.runtime.catalog import SD_SHARED
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.generation import common as sd
from vchat.tools.maps import conditions
from vchat.tools.maps.conditions import CONDITIONS, Condition
from vchat.tools.util import rgb

if TYPE_CHECKING:
    from PIL import Image

# ControlNet's demo defaults (also Visual ChatGPT's): quality words added to the prompt, and a negative prompt
# used when the model gives none.
QUALITY_SUFFIX = "best quality, extremely detailed"
QUALITY_NEGATIVE = (
    "longbody, lowres, bad anatomy, bad hands, missing fingers, extra digit, fewer digits, cropped, "
    "worst quality, low quality"
)


def _components(condition: Condition) -> tuple[str, ...]:
    return ("sd15.unet", condition.controlnet, *SD_SHARED, *condition.detector)


class _ControlNetTool(Tool):
    """Shared run: prepare the condition map (detect or use as is), run the ControlNet view, save."""

    condition: ClassVar[Condition]
    inputs = (
        Field("image", "image", "a photo, or a condition map of this kind"),
        Field("prompt", "text", "what the new image shows"),
        Field(
            "input_kind",
            "choice",
            "is the image a photo or already the map (auto: decide)",
            default="auto",
            choices=conditions.INPUT_KINDS,
        ),
        Field("control", "float", "how strictly to follow the map", default=1.0, minimum=0.0, maximum=2.0),
        sd.NEGATIVE,
        sd.steps_field(20),
        sd.guidance_field(9.0),
        sd.SEED,
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Map, generate at a fitted size, return at the input's size (or the capped size for huge inputs)."""
        ref = args["image"]
        prompt = str(args["prompt"]).strip()
        if not prompt:
            raise ToolError("the prompt is empty; say what the new image should show")
        control = float(args.get("control", 1.0))
        if not 0.0 <= control <= 2.0:
            raise ToolError(f"control must be 0..2, not {control:g}")
        kind = str(args.get("input_kind", "auto"))
        params = sd.sampling(args, negative=QUALITY_NEGATIVE)
        source = sd.edit_input(ctx, ref)
        condition = self.condition
        with sd.unavailable_as_observation():
            # Detect on what the perception tools see (transparency flattened onto white), so that
            # generate_from_X(photo) follows the same map as detect_X then generate_from_X(map).
            seen = source.original if source.alpha is None else _on_white(source.original, source.alpha)
            made = conditions.prepare(ctx, condition, ref, seen, source.work.size, kind, self.name)
        full_prompt = f"{prompt}, {QUALITY_SUFFIX}"
        width, height = source.work.size
        result = sd.run_sd(
            ctx,
            self.name,
            "controlnet",
            params,
            controlnet=condition.controlnet,
            prompt=full_prompt,
            image=made.image,
            width=width,
            height=height,
            controlnet_conditioning_scale=control,
        )
        keep_size = max(source.size) <= sd.max_side(ctx.settings)
        image = sd.resized(result.image, source.size) if keep_size else result.image
        record = {
            "prompt": full_prompt,
            "condition": condition.name,
            "condition_source": "detected" if made.detected else "as_is",
            "control": control,
            **params.record(),
        }
        out = ctx.save_image(image, tool=self.name, params=record, parents=(ref.handle,), seed=params.seed)
        how = f"detected from {ref.handle}" if made.detected else f"{ref.handle} used as the map"
        text = f"Generated {prompt!r} following the {condition.what} ({how}; {sd.describe_seed(params)})."
        notes = [n for n in (made.degraded, result.degraded) if n]
        return ToolResult(text, [out], degraded="; ".join(notes) or None)


def _on_white(image: Image.Image, alpha: Image.Image) -> Image.Image:
    rgba = image.copy()
    rgba.putalpha(alpha)
    return rgb(rgba)


def _described(what: str) -> str:
    return f"{what} Give a photo (the map is detected) or such a map. Returns the new image."


class GenerateFromCanny(_ControlNetTool):
    """ControlNet canny: follows hard outlines."""

    name = "generate_from_canny"
    condition = CONDITIONS["canny"]
    description = _described("Create a new image that keeps the outlines (Canny edges) of an image.")
    components = _components(condition)


class GenerateFromLines(_ControlNetTool):
    """ControlNet M-LSD: follows straight lines."""

    name = "generate_from_lines"
    condition = CONDITIONS["lines"]
    description = _described(
        "Create a new image that keeps the straight lines of an image (buildings, rooms, furniture; M-LSD)."
    )
    components = _components(condition)


class GenerateFromHed(_ControlNetTool):
    """ControlNet HED: follows soft edges."""

    name = "generate_from_hed"
    condition = CONDITIONS["hed"]
    description = _described(
        "Create a new image that keeps the soft edges (HED boundaries) of an image, looser than canny."
    )
    components = _components(condition)


class GenerateFromScribble(_ControlNetTool):
    """ControlNet scribble: turns a sketch into a picture."""

    name = "generate_from_scribble"
    condition = CONDITIONS["scribble"]
    description = _described("Create a picture from a scribble or sketch (white-on-black or black-on-white).")
    components = _components(condition)


class GenerateFromPose(_ControlNetTool):
    """ControlNet OpenPose: people in the same pose."""

    name = "generate_from_pose"
    condition = CONDITIONS["pose"]
    description = _described("Create a new image of people in the same body pose as in an image (OpenPose).")
    components = _components(condition)


class GenerateFromSegmentation(_ControlNetTool):
    """ControlNet seg: the same layout of regions."""

    name = "generate_from_segmentation"
    condition = CONDITIONS["segmentation"]
    description = _described(
        "Create a new image with the same layout of regions (sky, road, building...; ADE20K segmentation)."
    )
    components = _components(condition)


class GenerateFromDepth(_ControlNetTool):
    """ControlNet depth: the same 3D layout."""

    name = "generate_from_depth"
    condition = CONDITIONS["depth"]
    description = _described("Create a new image with the same 3D layout (depth map) as an image.")
    components = _components(condition)


class GenerateFromNormal(_ControlNetTool):
    """ControlNet normal: the same surface shapes."""

    name = "generate_from_normal"
    condition = CONDITIONS["normal"]
    description = _described("Create a new image with the same surface shapes (normal map) as an image.")
    components = _components(condition)


CONTROLNET_TOOLS: tuple[type[Tool], ...] = (
    GenerateFromCanny,
    GenerateFromLines,
    GenerateFromHed,
    GenerateFromScribble,
    GenerateFromPose,
    GenerateFromSegmentation,
    GenerateFromDepth,
    GenerateFromNormal,
)
