"""Text to every instance (SAM 3): one pass finds all objects of each named concept, with scores, boxes and masks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.errors import ToolError
from vchat.tools.perception.grounding import Box, Detection, iou, phrases_of
from vchat.tools.util import inputs_for, rgb

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from vchat.tools.base import ToolContext

SAM3_KEYS = ("sam3", "sam3.processor")
# SAM 3's score is its query's probability times the concept's presence probability; the model card keeps 0.5.
SAM3_THRESHOLD = 0.5
MAX_INSTANCES = 20
# SAM 3 is trained without NMS (one query per object), but a low threshold can let a second query onto one object.
NMS_IOU = 0.7


@dataclass
class Instances:
    """What SAM 3 found: one Detection per instance, best first, and the union of their masks as logits.

    `union` is H x W float32 at the image's size, > 0 inside any found instance (all negative when none).
    """

    found: list[Detection]
    union: np.ndarray
    degraded: str | None = None


def find_instances(
    ctx: ToolContext,
    image: Image.Image,
    text: str,
    *,
    threshold: float = SAM3_THRESHOLD,
    tool: str = "segment_object",
    with_masks: bool = True,
) -> Instances:
    """Every instance of the concepts named in `text` (comma-separated) that SAM 3 scores above `threshold`.

    The image is encoded once; each phrase is one text prompt over those features. Labels are always the
    user's own phrases. Without `with_masks` only the boxes are kept (detection needs no upsampled mask).
    """
    import numpy as np

    phrases = phrases_of(text)
    if not phrases:
        raise ToolError("say which objects to look for, e.g. 'cat' or 'cat, red car'")
    picture = rgb(image)
    width, height = picture.size

    def run(parts: Any) -> tuple[list[Detection], Any]:
        import torch

        processor, model = parts["sam3.processor"], parts["sam3"]
        pixels = processor(images=picture, return_tensors="pt")
        with torch.inference_mode():
            vision = model.get_vision_features(pixel_values=inputs_for(pixels, parts, "sam3")["pixel_values"])
        candidates: list[tuple[Detection, Any]] = []
        for phrase in phrases:
            ctx.check_cancelled()
            words = processor(text=[phrase], return_tensors="pt")
            device = parts.device_of("sam3")
            with torch.inference_mode():
                out = model(
                    vision_embeds=vision,
                    input_ids=words["input_ids"].to(device),
                    attention_mask=words["attention_mask"].to(device),
                )
            scores = out.pred_logits[0].float().sigmoid()
            if out.presence_logits is not None:
                scores = scores * out.presence_logits[0].float().sigmoid()
            boxes = out.pred_boxes[0].float().clamp(0, 1) * torch.tensor([width, height, width, height])
            for index in torch.nonzero(scores > threshold).flatten().tolist():
                box: Box = tuple(float(v) for v in boxes[index].tolist())  # type: ignore[assignment]
                if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                    continue
                low = out.pred_masks[0, index].float().cpu() if with_masks else None
                candidates.append((Detection(phrase, float(scores[index]), box), low))
        candidates.sort(key=lambda item: -item[0].score)
        kept: list[tuple[Detection, Any]] = []
        for detection, low in candidates:
            same = (d for d, _ in kept if d.label == detection.label)
            if any(iou(d.box, detection.box) > NMS_IOU for d in same):
                continue
            kept.append((detection, low))
            if len(kept) == MAX_INSTANCES:
                break
        union = None
        if with_masks and kept:
            # The union of the masks is the maximum of their logits: upsample that one map, not one per instance.
            low = torch.stack([logits for _, logits in kept]).amax(dim=0)[None, None]
            full = torch.nn.functional.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)
            union = full[0, 0].numpy()
        return [d for d, _ in kept], union

    outcome = ctx.models.run(run, *SAM3_KEYS, tool=tool)
    found, union = outcome.value
    if union is None:
        union = np.full((height, width), -1.0, np.float32)
    return Instances(found, np.asarray(union, dtype=np.float32), outcome.degraded)
