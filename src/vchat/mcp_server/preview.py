"""Previews for MCP image content: the output downscaled and encoded as PNG or JPEG."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

PREVIEW_FORMATS = ("auto", "png", "jpeg")


def _flat(image: Image.Image) -> tuple[bool, bool]:
    """(flat, grey): flat for images PNG keeps small and JPEG would smear (edge maps, masks, flat colour)."""
    if image.mode in ("1", "L", "LA", "P"):
        return True, image.mode in ("1", "L", "LA")
    colours = image.getcolors(256)
    if colours is None:
        return False, False
    grey = image.mode == "RGB" and all(isinstance(c, tuple) and c[0] == c[1] == c[2] for _, c in colours)
    return True, grey


def encode_preview(source: Path | Image.Image, max_side: int, fmt: str = "auto") -> tuple[bytes, str]:
    """An image (a file, or already in memory) scaled to at most `max_side` on its long side: (bytes, MIME type).

    auto: PNG for transparency and flat images (maps, masks), JPEG (quality 85) for photographs.
    The source image is never changed.
    """
    if isinstance(source, Image.Image):
        image = source.copy()
    else:
        with Image.open(source) as opened:
            image = opened.copy()
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    flat, grey = _flat(image) if fmt != "jpeg" else (False, False)
    if fmt == "auto":
        fmt = "png" if has_alpha or flat else "jpeg"
    buffer = io.BytesIO()
    if fmt == "jpeg":
        if has_alpha:  # JPEG has no alpha: flatten onto white, as the detectors do
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
            image = background
        image.convert("RGB").save(buffer, format="JPEG", quality=85, optimize=True)
        return buffer.getvalue(), "image/jpeg"
    if grey and image.mode == "RGB":
        image = image.convert("L")  # an edge or depth map in RGB: a third of the bytes to compress
    # Previews are sent once and thrown away: fast compression beats the last few percent of size.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), "image/png"
