"""Images in messages as a backend reads them: which model names take images, and image parts decoded for a
chat template (the built-in planner's processor). PIL is imported inside the functions."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vchat.llm.base import ContentPart, Message

if TYPE_CHECKING:
    from PIL import Image

_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,(.*)$", re.DOTALL)

# Model-name families known to accept image inputs over OpenAI-compatible APIs (vision = "auto").
_VISION_FAMILIES = re.compile(
    r"gpt-4o|gpt-4\.1|gpt-4-turbo|gpt-4-vision|gpt-5|chatgpt-4o|\bo[134](?!-mini)\b|o4-mini|claude-3|claude-(?:sonnet|opus|haiku)"
    r"|gemini|llava|bakllava|moondream|minicpm-v|qwen[\d.]*-?vl|qwen2\.5-?omni|qwen3\.5|qvq|gemma-?3|llama-?3\.2-vision"
    r"|llama-?4|pixtral|mistral-small-?3\.[12]|mistral-medium|internvl|phi-?3\.5-vision|phi-?4-multimodal|granite.*vision"
    r"|smolvlm|idefics|glm-4\.?\d*v|kimi-vl|molmo|cogvlm|deepseek-vl",
    re.IGNORECASE,
)


def model_sees(model: str) -> bool:
    """True when a model name belongs to a family known to take images (for `vision = "auto"`)."""
    return bool(_VISION_FAMILIES.search(model))


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
