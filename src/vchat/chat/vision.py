"""Images as chat content parts: downscaled PNG data URLs for the planner and a window of how many stay as pixels.

PIL is imported inside the functions. (Reading parts back, for the built-in planner, is `llm/pixels.py`.)"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vchat.llm.base import ContentPart, Message

if TYPE_CHECKING:
    pass

# What replaces the pixels of an image that is no longer among the newest few.
DROPPED = "(not shown any more; named by its handle)"


@dataclass(frozen=True)
class Vision:
    """How the planner is shown images: long side in pixels, and how many of the newest travel as pixels."""

    max_side: int = 448
    images: int = 3


def image_part(path: Path, max_side: int) -> ContentPart:
    """An OpenAI `image_url` part holding the image downscaled to `max_side` on its long side, as PNG."""
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("RGBA" if "A" in opened.getbands() else "RGB")
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    if image.mode == "RGBA":
        # Flattened onto white, as the tools do: models read transparent pixels as black otherwise.
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}


def with_images(text: str, images: Sequence[tuple[str, Path]], max_side: int) -> str | list[ContentPart]:
    """A message content: the text, then each (handle, path) as a label and its pixels; plain text if none."""
    if not images:
        return text
    parts: list[ContentPart] = [{"type": "text", "text": text}]
    for handle, path in images:
        try:
            part = image_part(path, max_side)
        except OSError:
            continue  # an image that cannot be read now is still named in the text
        parts.append({"type": "text", "text": f"\n{handle}:"})
        parts.append(part)
    return parts if len(parts) > 1 else text


def count_images(messages: Sequence[Message]) -> int:
    """How many image parts the messages carry."""
    return sum(
        1
        for m in messages
        if not isinstance(m["content"], str)
        for part in m["content"]
        if part.get("type") == "image_url"
    )


def dropped_count(total: int, keep: int) -> int:
    """How many of the oldest of `total` images lose their pixels: a multiple of `keep`, so the window moves in blocks.

    At least the newest `keep` images stay as pixels and at most 2 x keep - 1 do. Between two
    moves nothing already sent changes, so each request extends the one before byte for byte
    (the provider's prefix cache holds); a move rewrites earlier messages once per `keep` new images.
    """
    if keep <= 0:
        return total
    return max(0, total - keep) // keep * keep


def windowed(messages: Sequence[Message], keep: int) -> list[Message]:
    """The messages with the oldest images (`dropped_count` of them) as a short text instead of pixels."""
    drop = dropped_count(count_images(messages), keep)
    out: list[Message] = []
    seen = 0
    for message in messages:  # oldest first
        content = message["content"]
        if isinstance(content, str) or seen >= drop:
            out.append(message)
            continue
        parts: list[ContentPart] = []
        for part in content:
            if part.get("type") == "image_url" and seen < drop:
                seen += 1
                part = {"type": "text", "text": f" {DROPPED}"}
            parts.append(part)
        copy: Message = {**message}
        copy["content"] = parts
        out.append(copy)
    return out
