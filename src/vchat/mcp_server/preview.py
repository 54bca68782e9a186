"""Previews for MCP image content: the output downscaled and encoded as PNG or JPEG."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

PREVIEW_FORMATS = ("auto", "png", "jpeg")


def _flat(image: Image.Image) -> bool:
    """True for images PNG keeps small and JPEG would smear: edge maps, masks, flat colour."""
    return image.mode in ("1", "L", "LA", "P") or image.getcolors(256) is not None


def encode_preview(path: Path, max_side: int, fmt: str = "auto") -> tuple[bytes, str]:
    """The image at `path` scaled to at most `max_side` on its long side; returns (bytes, MIME type).

    auto: PNG for transparency and flat images (maps, masks), JPEG (quality 85) for photographs.
    """
    with Image.open(path) as opened:
        image = opened.copy()
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if fmt == "auto":
        fmt = "png" if has_alpha or _flat(image) else "jpeg"
    buffer = io.BytesIO()
    if fmt == "jpeg":
        if has_alpha:  # JPEG has no alpha: flatten onto white, as the detectors do
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
            image = background
        image.convert("RGB").save(buffer, format="JPEG", quality=85, optimize=True)
        return buffer.getvalue(), "image/jpeg"
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue(), "image/png"
