"""Model-free geometric and colour edits: resize, crop, rotate, flip, grayscale."""

from __future__ import annotations

from typing import Any

from PIL import Image

from vchat.errors import ToolError
from vchat.tools.base import Field, Tool, ToolContext, ToolResult

MAX_SIDE = 8192


def _save(ctx: ToolContext, tool: Tool, image: Image.Image, ref: Any, params: dict[str, Any], what: str) -> ToolResult:
    out = ctx.save_image(image, tool=tool.name, params=params, parents=(ref.handle,))
    return ToolResult(f"{what} of {ref.handle}: {image.width}x{image.height}.", [out])


class ResizeImage(Tool):
    """Scale an image, keeping its aspect ratio unless both sides are given."""

    name = "resize_image"
    description = (
        "Resize an image. Give width, height or both (0 keeps the aspect ratio from the other side), or a scale factor."
    )
    inputs = (
        Field("image", "image", "the image to resize"),
        Field("width", "int", "new width in pixels (0: from height)", default=0, minimum=0, maximum=MAX_SIDE),
        Field("height", "int", "new height in pixels (0: from width)", default=0, minimum=0, maximum=MAX_SIDE),
        Field("scale", "float", "scale factor used when width and height are 0", default=1.0, minimum=0.01, maximum=16),
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Resize with a high-quality filter."""
        ref = args["image"]
        image = ctx.load_image(ref)
        w, h = int(args["width"]), int(args["height"])
        scale = float(args["scale"])
        if w == 0 and h == 0:
            if scale == 1.0:
                raise ToolError("give a width, a height or a scale other than 1")
            w, h = round(image.width * scale), round(image.height * scale)
        elif w == 0:
            w = round(image.width * h / image.height)
        elif h == 0:
            h = round(image.height * w / image.width)
        if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
            raise ToolError(f"result {w}x{h} is outside 1..{MAX_SIDE} pixels per side")
        resized = image.resize((w, h), Image.Resampling.LANCZOS)
        return _save(ctx, self, resized, ref, {"width": w, "height": h}, "Resized copy")


class CropImage(Tool):
    """Cut out a rectangle given in pixels."""

    name = "crop_image"
    description = "Crop an image to the box left, top, right, bottom (pixels, origin at the top left)."
    inputs = (
        Field("image", "image", "the image to crop"),
        Field("left", "int", "left edge", minimum=0),
        Field("top", "int", "top edge", minimum=0),
        Field("right", "int", "right edge (exclusive)", minimum=1),
        Field("bottom", "int", "bottom edge (exclusive)", minimum=1),
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Crop to the box, refusing boxes outside the image."""
        ref = args["image"]
        image = ctx.load_image(ref)
        box = (int(args["left"]), int(args["top"]), int(args["right"]), int(args["bottom"]))
        if box[0] >= box[2] or box[1] >= box[3]:
            raise ToolError(f"empty box {box}: right must exceed left and bottom must exceed top")
        if box[2] > image.width or box[3] > image.height:
            raise ToolError(f"box {box} goes outside the {image.width}x{image.height} image")
        return _save(ctx, self, image.crop(box), ref, {"box": list(box)}, "Crop")


class RotateImage(Tool):
    """Rotate counter-clockwise by any angle, growing the canvas to keep every pixel."""

    name = "rotate_image"
    description = "Rotate an image counter-clockwise by an angle in degrees (90, 180, 270 are lossless)."
    inputs = (
        Field("image", "image", "the image to rotate"),
        Field("degrees", "float", "angle, counter-clockwise", minimum=-360, maximum=360),
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Rotate; right angles use transpose so no pixel is resampled."""
        ref = args["image"]
        image = ctx.load_image(ref)
        degrees = float(args["degrees"]) % 360
        exact = {90.0: Image.Transpose.ROTATE_90, 180.0: Image.Transpose.ROTATE_180, 270.0: Image.Transpose.ROTATE_270}
        if degrees == 0:
            raise ToolError("rotating by 0 degrees would not change the image")
        if degrees in exact:
            rotated = image.transpose(exact[degrees])
        else:
            rotated = image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True)
        return _save(ctx, self, rotated, ref, {"degrees": degrees}, f"Rotated by {degrees:g} degrees, copy")


class FlipImage(Tool):
    """Mirror horizontally or vertically."""

    name = "flip_image"
    description = "Mirror an image left-right (horizontal) or top-bottom (vertical)."
    inputs = (
        Field("image", "image", "the image to flip"),
        Field("direction", "choice", "which way", default="horizontal", choices=("horizontal", "vertical")),
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Flip with a lossless transpose."""
        ref = args["image"]
        how = Image.Transpose.FLIP_LEFT_RIGHT if args["direction"] == "horizontal" else Image.Transpose.FLIP_TOP_BOTTOM
        flipped = ctx.load_image(ref).transpose(how)
        return _save(ctx, self, flipped, ref, {"direction": args["direction"]}, f"{args['direction'].title()} flip")


class GrayscaleImage(Tool):
    """Drop colour."""

    name = "grayscale_image"
    description = "Make a black and white (grayscale) copy of an image."
    inputs = (Field("image", "image", "the image to convert"),)

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Convert to luminance."""
        ref = args["image"]
        gray = ctx.load_image(ref).convert("L")
        return _save(ctx, self, gray, ref, {}, "Grayscale copy")
