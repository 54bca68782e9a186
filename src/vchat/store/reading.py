"""Reading one image file the user named: validated, decoded, normalised to RGB or RGBA.

Kept apart from the session's image store so `vchat show` can read a picture without importing
the store's threads, JSON and PNG writer.
"""

from __future__ import annotations

import os
import stat
import warnings

from PIL import Image, ImageOps

from vchat.errors import ImageError

# File names vchat takes for images (typed paths, completion, batch inputs).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def normalise_mode(image: Image.Image) -> Image.Image:
    """Convert any decoded mode to RGB, or RGBA when the image has transparency."""
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode in ("LA", "La", "RGBa"):
        return image.convert("RGBA")
    if mode.startswith("I;16") or mode == "I":
        # 16/32-bit greyscale: scale to 8 bits rather than clipping everything above 255.
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype("uint8")
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "F":
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else arr * 0
        return Image.fromarray(scaled.astype("uint8"), "L").convert("RGB")
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def open_image(path: str | os.PathLike[str], max_pixels: int) -> tuple[Image.Image, str | None]:
    """Read and validate an image file; returns the normalised image and an optional note."""
    # os.path rather than pathlib: `vchat show` reads files through here and need not import pathlib.
    shown = os.fspath(path)
    if not os.path.exists(shown):
        raise ImageError(f"{shown}: no such file")
    if os.path.isdir(shown):
        raise ImageError(f"{shown}: is a folder, not an image")
    try:
        info = os.stat(shown)
    except OSError as exc:
        raise ImageError(f"{shown}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        # A pipe would block the decoder and a device never ends: only regular files are images.
        raise ImageError(f"{shown}: not a regular file (a pipe, device or socket); give an image file")
    size = info.st_size
    if size == 0:
        raise ImageError(f"{shown}: empty file (0 bytes)")
    note = None
    # Pillow's own bomb guard follows the user's limit (it errors at twice its setting).
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{shown}: {width}x{height} is over the limit of {max_pixels:,} pixels "
                        "(raise max_image_pixels in the config to allow it)"
                    )
                frames = int(getattr(img, "n_frames", 1))
                if frames > 1:
                    note = f"first frame of {frames}"
                    img.seek(0)
                img.load()
                # In place: no copy of the pixels when there is nothing to turn (most files).
                ImageOps.exif_transpose(img, in_place=True)
                image = normalise_mode(img)
                image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{shown}: declared size is over the limit of {max_pixels:,} pixels "
            "(raise max_image_pixels in the config to allow it)"
        ) from None
    except PermissionError:
        raise ImageError(f"{shown}: permission denied") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{shown}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{shown}: damaged or truncated image ({detail})") from None
    return image, note
