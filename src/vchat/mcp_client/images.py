"""Images across the MCP boundary: a session image sent as the server's schema asks, images in a result read back."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from vchat.errors import ToolError

if TYPE_CHECKING:
    import mcp_types as types

    from vchat.store.images import ImageRef
    from vchat.tools.base import ToolContext


def png_bytes(image: Image.Image) -> bytes:
    """The image as PNG (lossless: what the server gets is what the session holds)."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def send_image(ctx: ToolContext, ref: ImageRef, form: str) -> Any:
    """A session image as an argument value: a data: URI, bare base64, a path, or MCP image content."""
    if form == "path":
        return str(ref.path)
    raw, mime = _file_bytes(ref)
    if raw is None:
        raw, mime = png_bytes(ctx.load_image(ref)), "image/png"
    data = base64.b64encode(raw).decode("ascii")
    if form == "content":
        return {"type": "image", "data": data, "mimeType": mime}
    if form == "base64":
        return data
    return f"data:{mime};base64,{data}"


_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def _file_bytes(ref: ImageRef) -> tuple[bytes | None, str]:
    """The session's file as it is, when its format is one every server reads: encoding again costs far more."""
    mime = _MIME.get(ref.path.suffix.lower())
    if mime is None:
        return None, ""
    try:
        return ref.path.read_bytes(), mime
    except OSError:
        return None, ""


@dataclass
class Returned:
    """What a call result holds for vchat: its text and its images (decoded, not yet saved)."""

    text: str
    images: list[Image.Image]
    remote_handles: list[str]  # a vchat server's own names for them, in order (empty for other servers)
    remote_parents: list[str]  # a vchat server's names for the inputs they came from


def decode(data: str, max_pixels: int, where: str) -> Image.Image:
    """Base64 image bytes to a checked, loaded RGB(A) image."""
    try:
        raw = base64.b64decode(data, validate=False)
        image = Image.open(io.BytesIO(raw))
        if image.width * image.height > max_pixels:
            raise ToolError(f"{where} returned a {image.width}x{image.height} image, over max_image_pixels")
        image.load()
    except ToolError:
        raise
    except Exception as exc:  # whatever a server sends, a bad image is one line for the model
        raise ToolError(f"{where} returned an image vchat cannot read ({type(exc).__name__})") from None
    return image if image.mode in ("RGB", "RGBA") else image.convert("RGBA" if "A" in image.getbands() else "RGB")


def _is_image_link(block: Any) -> bool:
    mime = str(getattr(block, "mime_type", None) or "")
    return getattr(block, "type", None) == "resource_link" and (mime.startswith("image/") or not mime)


def read_result(result: types.CallToolResult, read_resource: Any, max_pixels: int, where: str) -> Returned:
    """The text and images of a result.

    Resource links to images are read in full (a vchat server sends a downscaled preview as image content and
    the full-size PNG as a link); image content is used only when no linked image could be read.
    """
    texts: list[str] = []
    inline: list[Image.Image] = []
    linked: list[Image.Image] = []
    for block in result.content:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)  # type: ignore[union-attr]
        elif kind == "image":
            inline.append(decode(block.data, max_pixels, where))  # type: ignore[union-attr]
        elif kind == "resource":
            resource = block.resource  # type: ignore[union-attr]
            blob = getattr(resource, "blob", None)
            if blob and str(getattr(resource, "mime_type", "") or "").startswith("image/"):
                inline.append(decode(blob, max_pixels, where))
            elif isinstance(text := getattr(resource, "text", None), str) and text:
                texts.append(text)
        elif _is_image_link(block):
            image = _read_link(read_resource, str(block.uri), max_pixels, where)  # type: ignore[union-attr]
            if image is not None:
                linked.append(image)
    if not texts and result.structured_content:
        import json

        texts.append(json.dumps(result.structured_content, ensure_ascii=False))
    images = linked or inline
    handles, parents = _vchat_names(result, len(images))
    return Returned("\n".join(t.strip() for t in texts if t.strip()), images, handles, parents)


def _read_link(read_resource: Any, uri: str, max_pixels: int, where: str) -> Image.Image | None:
    try:
        contents = read_resource(uri).contents
    except Exception:  # a link the server will not read back: the inline preview stands in
        return None
    for item in contents:
        blob = getattr(item, "blob", None)
        if blob:
            return decode(blob, max_pixels, where)
    return None


def _vchat_names(result: types.CallToolResult, count: int) -> tuple[list[str], list[str]]:
    """A vchat server's structured result names its images (img2) and their parents; both as that server says."""
    structured = result.structured_content or {}
    images = structured.get("images") if isinstance(structured, dict) else None
    if not isinstance(images, list) or len(images) != count or not all(isinstance(i, dict) for i in images):
        return [], []
    handles = [str(item.get("handle", "")) for item in images]
    parents = images[0].get("parents") if images else []
    parents = [str(p) for p in parents] if isinstance(parents, list) else []
    return (handles, parents) if all(handles) else ([], [])
