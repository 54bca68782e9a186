"""Reusable text-to-box (Grounding DINO) and box-to-mask (SAM) functions for the detection and editing tools."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from vchat.errors import ToolError
from vchat.tools.util import inputs_for, rgb

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from vchat.tools.base import ToolContext

DINO_KEYS = ("grounding_dino", "grounding_dino.processor")
SAM_KEYS = ("sam", "sam.processor")
BOX_THRESHOLD = 0.35  # Grounding DINO's usual box threshold
NMS_IOU = 0.5  # boxes of one label overlapping more than this are duplicates of one object
MAX_BOXES = 20
MAX_PHRASES = 16

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the image


class Detection(NamedTuple):
    """One object found from text: the phrase it matched, its confidence (0..1) and its box in pixels."""

    label: str
    score: float
    box: Box


def phrases_of(text: str) -> list[str]:
    """The object names in a request ("a cat, the red car."), lowercased, without repeats."""
    parts = (" ".join(p.split()).lower() for p in re.split(r"[,;.\n]+", text))
    return list(dict.fromkeys(p for p in parts if p))[:MAX_PHRASES]


def detect_boxes(
    ctx: ToolContext,
    image: Image.Image,
    text: str,
    *,
    threshold: float = BOX_THRESHOLD,
    tool: str = "detect_objects",
    notes: list[str] | None = None,
) -> list[Detection]:
    """Objects named in `text` (comma-separated names) found by Grounding DINO, best first; [] when none.

    Each box is labelled with the requested phrase it matches best, never with decoded model tokens, so a label
    is always one of the user's words. `notes` collects a degraded-mode note when the runtime had to fall back.
    """
    phrases = phrases_of(text)
    if not phrases:
        raise ToolError("say which objects to look for, e.g. 'cat' or 'cat, red car'")
    picture = rgb(image)

    def run(parts: Any) -> tuple[np.ndarray, np.ndarray, list[int], Any]:
        import torch

        processor = parts["grounding_dino.processor"]
        batch = processor(images=picture, text=" . ".join(phrases) + " .", return_tensors="pt")
        with torch.inference_mode():
            out = parts["grounding_dino"](**inputs_for(batch, parts, "grounding_dino"))
        probs = out.logits[0].float().sigmoid().cpu().numpy()  # queries × text positions
        boxes = out.pred_boxes[0].float().cpu().numpy()  # queries × (cx, cy, w, h), relative
        return probs, boxes, batch["input_ids"][0].tolist(), processor.tokenizer

    outcome = ctx.models.run(run, *DINO_KEYS, tool=tool)
    if outcome.degraded and notes is not None:
        notes.append(outcome.degraded)
    probs, boxes, ids, tokenizer = outcome.value
    spans = _phrase_spans(ids, phrases, tokenizer, probs.shape[1])
    if not spans:
        return []
    import numpy as np

    scores = np.stack([probs[:, start:end].max(axis=1) for _, start, end in spans], axis=1)  # queries × phrases
    best = scores.argmax(axis=1)
    width, height = picture.size
    found: list[Detection] = []
    for query in np.argsort(-scores.max(axis=1)):
        score = float(scores[query, best[query]])
        if score <= threshold:
            break
        cx, cy, w, h = boxes[query]
        box = (
            float(np.clip((cx - w / 2) * width, 0, width)),
            float(np.clip((cy - h / 2) * height, 0, height)),
            float(np.clip((cx + w / 2) * width, 0, width)),
            float(np.clip((cy + h / 2) * height, 0, height)),
        )
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        label = spans[best[query]][0]
        if any(d.label == label and iou(d.box, box) > NMS_IOU for d in found):
            continue
        found.append(Detection(label, score, box))
        if len(found) == MAX_BOXES:
            break
    return found


def _phrase_spans(ids: list[int], phrases: list[str], tokenizer: Any, width: int) -> list[tuple[str, int, int]]:
    """(phrase, start, end) token positions of each phrase in `[CLS] p1 . p2 . [SEP]`, within the model's text."""
    spans: list[tuple[str, int, int]] = []
    position = 1  # after [CLS]
    for phrase in phrases:
        length = len(tokenizer(phrase, add_special_tokens=False)["input_ids"])
        end = min(position + length, width, len(ids))
        if length and end > position:
            spans.append((phrase, position, end))
        position += length + 1  # and the " ." after it
    return spans


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mask_logits(
    ctx: ToolContext,
    image: Image.Image,
    boxes: Sequence[Box | Detection],
    *,
    tool: str = "segment_object",
    notes: list[str] | None = None,
) -> np.ndarray:
    """SAM's mask logits (H×W float32, > 0 inside) of the union of the objects in `boxes`, at the image's size."""
    import numpy as np

    plain = [list(map(float, b.box if isinstance(b, Detection) else b)) for b in boxes]
    if not plain:
        return np.full((image.height, image.width), -1.0, np.float32)
    picture = rgb(image)

    def run(parts: Any) -> np.ndarray:
        import torch

        processor = parts["sam.processor"]
        batch = processor(images=picture, input_boxes=[plain], return_tensors="pt")
        sizes = (batch.pop("original_sizes"), batch.pop("reshaped_input_sizes"))
        with torch.inference_mode():
            out = parts["sam"](**inputs_for(batch, parts, "sam"), multimask_output=False)
        # The union of the masks is the maximum of their logits; upsample that one map, not one per box.
        union = out.pred_masks[0, :, 0].float().amax(dim=0)[None, None].cpu()
        full = processor.image_processor.post_process_masks([union], *sizes, binarize=False)[0]
        return np.asarray(full[0, 0].numpy(), dtype=np.float32)

    outcome = ctx.models.run(run, *SAM_KEYS, tool=tool)
    if outcome.degraded and notes is not None:
        notes.append(outcome.degraded)
    return outcome.value


def segment_boxes(
    ctx: ToolContext,
    image: Image.Image,
    boxes: Sequence[Box | Detection],
    *,
    tool: str = "segment_object",
    notes: list[str] | None = None,
) -> Image.Image:
    """SAM mask of the objects in `boxes` (pixel boxes or Detections) as an 'L' image of the image's size: 255 inside.

    All black when `boxes` is empty or SAM finds nothing inside them.
    """
    import numpy as np
    from PIL import Image

    logits = mask_logits(ctx, image, boxes, tool=tool, notes=notes)
    return Image.fromarray(np.where(logits > 0, 255, 0).astype(np.uint8), "L")
