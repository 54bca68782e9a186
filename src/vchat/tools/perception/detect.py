"""detect_objects: boxes around the objects named in text (Grounding DINO), drawn on a copy and listed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vchat.runtime.tiers import active_tier, lineage
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.perception.grounding import BOX_THRESHOLD, DINO_KEYS, Detection, detect_boxes, phrases_of
from vchat.tools.perception.sam3 import SAM3_KEYS, find_instances
from vchat.tools.util import not_found, rgb, save

if TYPE_CHECKING:
    from PIL import Image

COLOURS = ((255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120), (255, 120, 255), (255, 150, 60))


def draw_detections(image: Image.Image, detections: list[Detection]) -> Image.Image:
    """A copy of the image with each box outlined and labelled (one colour per label)."""
    from PIL import ImageDraw, ImageFont

    out = rgb(image).copy()
    draw = ImageDraw.Draw(out)
    side = min(out.size)
    line = max(1, side // 150)
    font = ImageFont.load_default(size=max(10, side // 30))
    labels = list(dict.fromkeys(d.label for d in detections))
    for det in detections:
        colour = COLOURS[labels.index(det.label) % len(COLOURS)]
        draw.rectangle(det.box, outline=colour, width=line)
        caption = f"{det.label} {det.score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
        x, y = det.box[0], max(0.0, det.box[1] - (bottom - top) - 2 * line)
        draw.rectangle((x, y, x + right - left + 2 * line, y + bottom - top + 2 * line), fill=colour)
        draw.text((x + line - left, y + line - top), caption, fill=(0, 0, 0), font=font)
    return out


def describe(detections: list[Detection]) -> str:
    """`cat 0.82 at [12, 30, 200, 180]; dog 0.51 at [...]` (boxes: left, top, right, bottom in pixels)."""
    return "; ".join(f"{d.label} {d.score:.2f} at [{', '.join(str(round(v)) for v in d.box)}]" for d in detections)


class DetectObjects(Tool):
    """Find objects from a text description."""

    name = "detect_objects"
    brief = "find the objects named in text ('cat, red car'): label, score, box (px) each; image with boxes"
    description = (
        "Find the objects named in text (e.g. 'cat' or 'cat, red car') in an image with Grounding DINO; returns "
        "a copy with the boxes drawn, and lists each as label, score and box (left, top, right, bottom pixels)."
    )
    inputs = (
        Field("image", "image", "the image to search"),
        Field("text", "text", "what to find: object names separated by commas"),
        Field("threshold", "float", "minimum confidence", default=BOX_THRESHOLD, minimum=0, maximum=1),
    )
    components = (*DINO_KEYS, *SAM3_KEYS)

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Detect, draw and list; nothing found is said plainly."""
        ref = args["image"]
        text, threshold = str(args["text"]), float(args["threshold"])
        image = ctx.load_image(ref)
        notes: list[str] = []
        params: dict[str, Any] = {"text": text, "threshold": threshold}
        if active_tier(ctx.settings) == "current":
            # SAM 3 lists every instance of each concept; its masks are not needed for boxes.
            instances = find_instances(ctx, image, text, threshold=threshold, tool=self.name, with_masks=False)
            found = instances.found
            notes.extend(n for n in (instances.degraded,) if n)
            params.update(lineage(ctx.settings, "sam3"))
        else:
            found = detect_boxes(ctx, image, text, threshold=threshold, tool=self.name, notes=notes)
        if not found:
            raise not_found(" or ".join(phrases_of(text)), ref)
        out = save(ctx, self.name, draw_detections(image, found), ref, params)
        count = "1 object" if len(found) == 1 else f"{len(found)} objects"
        text_out = f"Found {count} in {ref.handle}: {describe(found)}."
        return ToolResult(text_out, [out], degraded=notes[0] if notes else None)
