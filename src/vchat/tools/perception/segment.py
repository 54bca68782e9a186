"""segment_anything (every SAM mask as a colour overlay) and segment_object (the mask of an object named in text)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vchat.errors import ToolError
from vchat.runtime.tiers import active_tier, lineage
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.perception.grounding import BOX_THRESHOLD, DINO_KEYS, SAM_KEYS, detect_boxes, mask_logits, phrases_of
from vchat.tools.perception.sam3 import SAM3_KEYS, find_instances
from vchat.tools.util import fit_longest, not_found, percent, rgb, save

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# Automatic masks are computed on a copy at most this long (SAM itself sees 1024 px; every candidate mask is
# upsampled to this size, so the full size of a large photo would cost gigabytes), then scaled back.
AMG_SIDE = 768
POINTS_PER_SIDE = 32  # SAM's automatic mask generator grid
POINTS_PER_BATCH = 32
PRED_IOU = 0.88  # SAM's defaults for keeping a candidate mask
STABILITY = 0.95
NMS = 0.7
OVERLAY_ALPHA = 0.5
TINT = (30, 144, 255)


def segment_everything(ctx: ToolContext, image: Image.Image, tool: str) -> tuple[list[np.ndarray], str | None]:
    """SAM's automatic masks (bool H×W at the working size), largest first."""
    import numpy as np
    import torch

    work = fit_longest(rgb(image), AMG_SIDE)

    def run(parts: Any) -> list[np.ndarray]:
        model, processor = parts["sam"], parts["sam.processor"].image_processor
        device = parts.device_of("sam")
        target = processor.size["longest_edge"]
        crop_boxes, points, crops, labels = processor.generate_crop_boxes(
            work, target, points_per_crop=POINTS_PER_SIDE, device=device
        )
        batch = processor(images=crops, return_tensors="pt")
        sizes = batch["original_sizes"], batch["reshaped_input_sizes"]
        with torch.inference_mode():
            embeddings = model.get_image_embeddings(batch["pixel_values"].to(device, parts.dtype_of("sam")))
        points = points.to(parts.dtype_of("sam"))
        masks, scores, boxes = [], [], []
        for start in range(0, points.shape[1], POINTS_PER_BATCH):
            ctx.check_cancelled()
            chunk = slice(start, start + POINTS_PER_BATCH)
            with torch.inference_mode():
                out = model(image_embeddings=embeddings, input_points=points[:, chunk], input_labels=labels[:, chunk])
                # Candidates below the predicted-IoU bar go before upsampling, the step whose cost grows with
                # the image; the rest is upsampled and filtered where the model ran, and leaves it as RLE.
                low, iou = out.pred_masks[0].flatten(0, 1)[:, None].float(), out.iou_scores[0].flatten()[:, None]
                if PRED_IOU > 0:
                    good = iou[:, 0] > PRED_IOU
                    low, iou = low[good], iou[good]
                if len(low) == 0:
                    continue
                upsampled = processor.post_process_masks([low], *sizes, binarize=False)[0]
                kept, kept_scores, kept_boxes = processor.filter_masks(
                    upsampled, iou.float(), sizes[0][0].tolist(), crop_boxes[0], PRED_IOU, STABILITY
                )
            masks.extend(kept)
            scores.append(kept_scores)
            boxes.append(kept_boxes)
        if not masks:
            return []
        final, *_ = processor.post_process_for_mask_generation(masks, torch.cat(scores), torch.cat(boxes), NMS)
        arrays = [np.asarray(m.cpu().numpy() if hasattr(m, "cpu") else m, dtype=bool) for m in final]
        return sorted(arrays, key=lambda m: -int(m.sum()))

    outcome = ctx.models.run(run, *SAM_KEYS, tool=tool)
    return outcome.value, outcome.degraded


def colour_overlay(image: Image.Image, masks: list[np.ndarray]) -> Image.Image:
    """The image with each mask (working size, largest first) tinted in its own colour, at the image's size."""
    import numpy as np
    from PIL import Image

    height, width = masks[0].shape
    index = np.zeros((height, width), np.int32)  # 0: no mask; smaller masks are painted over larger ones
    for number, mask in enumerate(masks, start=1):
        index[mask] = number
    index_full = np.asarray(Image.fromarray(index).resize(image.size, Image.Resampling.NEAREST))
    colours = np.random.default_rng(0).integers(40, 256, size=(len(masks) + 1, 3)).astype(np.float32)
    base = np.asarray(rgb(image), dtype=np.float32)
    tinted = np.where(index_full[..., None] > 0, base * (1 - OVERLAY_ALPHA) + colours[index_full] * OVERLAY_ALPHA, base)
    return Image.fromarray(tinted.round().astype(np.uint8), "RGB")


def render_mask(image: Image.Image, logits: np.ndarray, style: str) -> Image.Image:
    """A mask as the tool's output: white on black, a tinted overlay, or the object cut out on transparency."""
    import numpy as np
    from PIL import Image

    inside = logits > 0
    if style == "mask":
        return Image.fromarray(np.where(inside, 255, 0).astype(np.uint8), "L")
    if style == "overlay":
        base = np.asarray(rgb(image), dtype=np.float32)
        tint = np.array(TINT, np.float32)
        mixed = np.where(inside[..., None], base * (1 - OVERLAY_ALPHA) + tint * OVERLAY_ALPHA, base)
        return Image.fromarray(mixed.round().astype(np.uint8), "RGB")
    return cutout(image, soft_alpha(logits))


def soft_alpha(logits: np.ndarray) -> np.ndarray:
    """Alpha (uint8) from mask logits: the sigmoid keeps the one or two pixels of smooth edge SAM predicts."""
    import numpy as np

    return (255 / (1 + np.exp(-np.clip(logits, -30, 30)))).round().astype(np.uint8)


def cutout(image: Image.Image, alpha: np.ndarray) -> Image.Image:
    """RGBA copy with `alpha` applied (multiplied with any transparency the image already had)."""
    import numpy as np
    from PIL import Image

    rgba = np.array(image.convert("RGBA"))
    rgba[..., 3] = (rgba[..., 3].astype(np.uint16) * alpha // 255).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


class SegmentAnything(Tool):
    """Every region SAM can find, coloured."""

    name = "segment_anything"
    brief = "all regions of an image, each tinted (SAM)"
    description = (
        "Split an image into all its regions with Segment Anything (SAM); returns the image with each region "
        "tinted in its own colour, and how many regions were found."
    )
    inputs = (Field("image", "image", "the image to segment"),)
    components = SAM_KEYS

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Automatic mask generation, then one overlay."""
        ref = args["image"]
        image = ctx.load_image(ref)
        masks, degraded = segment_everything(ctx, image, self.name)
        if not masks:
            raise not_found("distinct regions", ref)
        out = save(ctx, self.name, colour_overlay(image, masks), ref, {})
        largest = percent(float(masks[0].mean()))
        regions = "1 region" if len(masks) == 1 else f"{len(masks)} regions"
        text = f"{regions} found in {ref.handle} (the largest covers {largest} of it)."
        return ToolResult(text, [out], degraded=degraded)


class SegmentObject(Tool):
    """The exact outline of an object named in text."""

    name = "segment_object"
    brief = "mask, overlay or cutout of the objects named in text"
    description = (
        "Cut out the object named in text (e.g. 'the dog') with Grounding DINO and SAM; returns its mask (white on "
        "black), an overlay, or the object on a transparent background, as asked."
    )
    inputs = (
        Field("image", "image", "the image with the object"),
        Field("text", "text", "the object to segment; several names separated by commas are all included"),
        Field("output", "choice", "what to return", default="mask", choices=("mask", "overlay", "cutout")),
        Field("threshold", "float", "minimum detection confidence", default=BOX_THRESHOLD, minimum=0, maximum=1),
    )
    components = (*DINO_KEYS, *SAM_KEYS, *SAM3_KEYS)

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Boxes from text, then one SAM mask over all of them (current tier: SAM 3 does both)."""
        ref = args["image"]
        text, style, threshold = str(args["text"]), str(args["output"]), float(args["threshold"])
        image = ctx.load_image(ref)
        notes: list[str] = []
        params: dict[str, Any] = {"text": text, "output": style, "threshold": threshold}
        masker = "SAM 3" if active_tier(ctx.settings) == "current" else "SAM"
        if masker == "SAM 3":
            # SAM 3 finds and outlines every instance of each named concept in one model.
            instances = find_instances(ctx, image, text, threshold=threshold, tool=self.name)
            found, logits = instances.found, instances.union
            notes.extend(n for n in (instances.degraded,) if n)
            params.update(lineage(ctx.settings, "sam3"))
        else:
            found = detect_boxes(ctx, image, text, threshold=threshold, tool=self.name, notes=notes)
            if found:
                ctx.check_cancelled()
                logits = mask_logits(ctx, image, found, tool=self.name, notes=notes)
        if not found:
            raise not_found(" or ".join(phrases_of(text)), ref)
        share = float((logits > 0).mean())
        if share == 0:
            raise ToolError(f"found {found[0].label} in {ref.handle} but {masker} returned an empty mask for it")
        out = save(ctx, self.name, render_mask(image, logits, style), ref, params)
        labels = ", ".join(dict.fromkeys(d.label for d in found))
        count = "1 object" if len(found) == 1 else f"{len(found)} objects"
        text_out = f"{style.capitalize()} of {labels} in {ref.handle}: {count}, {percent(share)} of the image."
        return ToolResult(text_out, [out], degraded=notes[0] if notes else None)
