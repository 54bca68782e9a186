"""extend_image: outpainting to a larger canvas (caption the scene, inpaint the border, blend the seams)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vchat.errors import ModelLoadError, ToolError
from vchat.runtime.catalog import SD_SHARED
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.generation import common as sd
from vchat.tools.generation import klein

if TYPE_CHECKING:
    from PIL import Image

DIRECTIONS = ("all", "horizontal", "vertical", "left", "right", "up", "down")
CAPTION = ("blip_caption", "blip_caption.processor")
# The original's border repainted too, so that the new content grows out of it instead of meeting it at a line.
OVERLAP_SHARE = 0.03
MAX_CANVAS_SIDE = 8192


def canvas_layout(size: tuple[int, int], factor: float, direction: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(canvas size, where the original's top-left corner goes) for growing `size` by `factor` in `direction`."""
    if direction not in DIRECTIONS:
        raise ToolError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    width, height = size
    wide = direction in ("all", "horizontal", "left", "right")
    tall = direction in ("all", "vertical", "up", "down")
    new_w = round(width * factor) if wide else width
    new_h = round(height * factor) if tall else height
    x = {"left": new_w - width, "right": 0}.get(direction, (new_w - width) // 2)
    y = {"up": new_h - height, "down": 0}.get(direction, (new_h - height) // 2)
    return (new_w, new_h), (x, y)


def _border_mask(canvas: tuple[int, int], box: tuple[int, int, int, int], overlap: int) -> Image.Image:
    """White where new content goes: everything but the original's box, shrunk by `overlap` on its open sides."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = box
    width, height = canvas
    inner = (
        left + (overlap if left > 0 else 0),
        top + (overlap if top > 0 else 0),
        right - (overlap if right < width else 0),
        bottom - (overlap if bottom < height else 0),
    )
    mask = Image.new("L", canvas, 255)
    ImageDraw.Draw(mask).rectangle((inner[0], inner[1], inner[2] - 1, inner[3] - 1), fill=0)
    return mask


def caption(ctx: ToolContext, image: Image.Image, tool: str) -> tuple[str, str | None]:
    """A BLIP caption of the scene (the prompt outpainting continues); ("", note) when BLIP cannot run."""
    import torch

    def run(parts: Any) -> str:
        processor, model = parts["blip_caption.processor"], parts["blip_caption"]
        inputs = processor(images=image, return_tensors="pt")
        pixels = inputs["pixel_values"].to(parts.device_of("blip_caption"), parts.dtype_of("blip_caption"))
        with torch.no_grad():
            ids = model.generate(pixel_values=pixels, max_new_tokens=30)
        return str(processor.decode(ids[0], skip_special_tokens=True)).strip()

    try:
        outcome = ctx.models.run(run, *CAPTION, tool=tool)
    except ModelLoadError as exc:
        return "", f"no caption model ({exc}); extended without a scene description"
    return outcome.value, outcome.degraded


class ExtendImage(Tool):
    """Outpainting with the SD inpainting UNet, original pixels kept exactly."""

    name = "extend_image"
    brief = "outpaint: grow the canvas by factor and paint the new area (prompt: what it shows)"
    description = (
        "Extend an image beyond its borders (outpainting): the canvas grows by a factor in a direction and the "
        "new area is painted to continue the scene. Returns the larger image."
    )
    inputs = (
        Field("image", "image", "the image to extend"),
        Field("factor", "float", "how many times larger each extended side gets", default=2.0, minimum=1.1, maximum=4),
        Field("direction", "choice", "where to add space", default="all", choices=DIRECTIONS),
        Field("prompt", "text", "what the new area shows (default: a caption of the image)", default=""),
        sd.NEGATIVE,
        sd.steps_field(30),
        sd.guidance_field(),
        sd.SEED,
    )
    components = ("sd15_inpaint.unet", *SD_SHARED, *CAPTION)
    current_components = (*klein.COMPONENTS, *CAPTION)

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Lay out the canvas, inpaint its border at a fitted size, paste the original back with soft seams."""
        from PIL import Image

        ref = args["image"]
        factor = float(args.get("factor", 2.0))
        if not 1.1 <= factor <= 4.0:
            raise ToolError(f"factor must be 1.1..4, not {factor:g}")
        direction = str(args.get("direction", "all"))
        params = sd.sampling(args)
        original = ctx.load_image(ref).convert("RGB")
        canvas, (x, y) = canvas_layout(original.size, factor, direction)
        pixels_cap = int(getattr(ctx.settings, "max_image_pixels", 64_000_000))
        if max(canvas) > MAX_CANVAS_SIDE or canvas[0] * canvas[1] > pixels_cap:
            raise ToolError(f"the extended image would be {canvas[0]}x{canvas[1]}, too large; use a smaller factor")
        use_klein = klein.current(ctx)
        if use_klein:
            work = klein.fit(*canvas, cap=sd.max_side(ctx.settings))
        else:
            work = sd.fit_size(*canvas, cap=sd.max_side(ctx.settings), upscale_small=sd.upscale_small(ctx.settings))
        scale = work[0] / canvas[0]

        prompt = str(args.get("prompt") or "").strip()
        note = None
        if not prompt:
            prompt, note = caption(ctx, original, self.name)

        # Working canvas: the original scaled in place, grey elsewhere (the inpainting UNet never sees masked pixels).
        box = (
            round(x * scale),
            round(y * scale),
            round((x + original.width) * scale),
            round((y + original.height) * scale),
        )
        work_canvas = Image.new("RGB", work, (127, 127, 127))
        work_canvas.paste(sd.resized(original, (box[2] - box[0], box[3] - box[1])), box[:2])
        overlap = max(2, round(OVERLAP_SHARE * max(work)))
        done = klein.repaint(ctx, self.name, params, prompt, work_canvas, _border_mask(work, box, overlap))
        result, sampling, described, made_by = done.result, done.sampling, done.described, done.made_by

        generated = sd.resized(result.image, canvas)
        with_original = generated.copy()
        with_original.paste(original, (x, y))
        full_box = (x, y, x + original.width, y + original.height)
        seam = max(2, round(overlap / scale))
        extended = sd.composite(with_original, generated, _border_mask(canvas, full_box, seam), feather=seam / 2)
        record = {
            "factor": factor,
            "direction": direction,
            "prompt": prompt,
            "work_size": list(work),
            **sampling,
            "image": ref.handle,
            **klein.lineage(ctx, made_by),
        }
        out = ctx.save_image(extended, tool=self.name, params=record, parents=(ref.handle,), seed=params.seed)
        text = (
            f"Extended {ref.handle} from {original.width}x{original.height} to {canvas[0]}x{canvas[1]} "
            f"({direction}; scene {prompt!r}; {described})."
        )
        notes = [n for n in (note, result.degraded) if n]
        return ToolResult(text, [out], degraded="; ".join(notes) or None)
