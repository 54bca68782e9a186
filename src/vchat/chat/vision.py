"""Images as chat content parts: downscaled PNG data URLs for the planner, a window of how many stay as pixels,
and decoding back to PIL images for the built-in planner's processor. PIL is imported inside the functions."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vchat.llm.base import ContentPart, Message

if TYPE_CHECKING:
    from PIL import Image

_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,(.*)$", re.DOTALL)
# What replaces the pixels of an image that is no longer among the newest few.
DROPPED = "(not shown any more; named by its handle)"

# Model-name families known to accept image inputs over OpenAI-compatible APIs (vision = "auto").
_VISION_FAMILIES = re.compile(
    r"gpt-4o|gpt-4\.1|gpt-4-turbo|gpt-4-vision|gpt-5|chatgpt-4o|\bo[134](?!-mini)\b|o4-mini|claude-3|claude-(?:sonnet|opus|haiku)"
    r"|gemini|llava|bakllava|moondream|minicpm-v|qwen[\d.]*-?vl|qwen2\.5-?omni|qwen3\.5|qvq|gemma-?3|llama-?3\.2-vision"
    r"|llama-?4|pixtral|mistral-small-?3\.[12]|mistral-medium|internvl|phi-?3\.5-vision|phi-?4-multimodal|granite.*vision"
    r"|smolvlm|idefics|glm-4\.?\d*v|kimi-vl|molmo|cogvlm|deepseek-vl",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Vision:
    """How the planner is shown images: long side in pixels, and how many of the newest travel as pixels."""

    max_side: int = 448
    images: int = 3


def model_sees(model: str) -> bool:
    """True when a model name belongs to a family known to take images (for `vision = "auto"`)."""
    return bool(_VISION_FAMILIES.search(model))


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


def decode_part(part: ContentPart) -> Image.Image:
    """The PIL image of an `image_url` part holding a base64 data URL (the only kind vchat makes)."""
    from PIL import Image

    url = str((part.get("image_url") or {}).get("url", ""))
    match = _DATA_URL.match(url)
    if match is None:
        raise ValueError("only data: URLs of images can be shown to the built-in planner")
    with Image.open(io.BytesIO(base64.b64decode(match.group(1)))) as opened:
        return opened.convert("RGB")


def template_messages(messages: Sequence[Message]) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """Messages in the shape chat templates take (`{"type": "image"}` placeholders) and the images in order."""
    chat: list[dict[str, Any]] = []
    images: list[Image.Image] = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            chat.append({"role": message["role"], "content": content})
            continue
        parts: list[dict[str, Any]] = []
        for part in content:
            if part.get("type") == "image_url":
                images.append(decode_part(part))
                parts.append({"type": "image"})
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
        chat.append({"role": message["role"], "content": parts})
    return chat, images
