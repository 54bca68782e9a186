"""Inline image previews: pure encoders for kitty, iTerm2, sixel and truecolor half-blocks.

numpy is imported only by the encoders that need it (sixel, half-blocks): `vchat show` in kitty or
iTerm2 mode never pays for it.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from PIL import Image

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

MODES: Final = ("kitty", "iterm", "sixel", "blocks", "none")
DEFAULT_CELL: Final = (10, 20)
# Mid grey reads as "transparent" on both dark and light terminal themes.
NEUTRAL_BG: Final = (128, 128, 128)
# Small images (icons, 64² masks) may grow to stay legible, but not into a blur.
MAX_UPSCALE: Final = 2.0
# Growing a picture by less than half only softens it (a 600×400 photo made 660×440 to fill the box) and
# costs a resample of every pixel; small pictures (icons, 64² masks) still grow, up to MAX_UPSCALE.
SLIGHT_UPSCALE: Final = 1.5
KITTY_CHUNK: Final = 4096
# tmux drops any one escape sequence longer than 1 MiB (its input buffer limit); a sixel cannot be split.
TMUX_SEQUENCE_MAX: Final = 1 << 20
# kitty's placeholders can name 297 rows and columns (one combining mark each); wider pictures are drawn directly.
PLACEHOLDER_CELLS: Final = 297

ESC: Final = b"\x1b"
ST: Final = b"\x1b\\"
BEL: Final = b"\x07"
RESET: Final = b"\x1b[0m"


# --------------------------------------------------------------------------- sizing


def flatten(image: Image.Image, background: tuple[int, int, int] = NEUTRAL_BG) -> Image.Image:
    """The image as RGB, with any transparency composited over `background`."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if not has_alpha:
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    base = Image.new("RGB", rgba.size, background)
    base.paste(rgba, mask=rgba.getchannel("A"))
    return base


def fit_size(width: int, height: int, box_w: int, box_h: int, max_upscale: float = MAX_UPSCALE) -> tuple[int, int]:
    """Largest (w, h) with the aspect of width×height inside box_w×box_h, scaled up at most `max_upscale`."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image has no pixels ({width}x{height})")
    scale = min(box_w / width, box_h / height, max_upscale)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if size == image.size:
        return image
    if size[0] < image.width or size[1] < image.height:
        # reducing_gap makes big downscales (4K photo → 80 columns) cheap with no visible loss.
        return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image.resize(size, Image.Resampling.BICUBIC)


def scale_to_cells(image: Image.Image, cols: int, rows: int, cell: tuple[int, int] = DEFAULT_CELL) -> Image.Image:
    """Flatten and scale `image` to fit a box of cols×rows terminal cells of `cell` pixels each."""
    cw, ch = _check_box(cols, rows, cell)
    flat = flatten(image)
    size = fit_size(flat.width, flat.height, cols * cw, rows * ch)
    if flat.width < size[0] <= flat.width * SLIGHT_UPSCALE:
        size = flat.size
    return _resize(flat, size)


def cells_for(size: tuple[int, int], cols: int, rows: int, cell: tuple[int, int]) -> tuple[int, int]:
    """How many cells (cols, rows) a picture of `size` pixels covers, at least 1, at most the box."""
    cw, ch = _check_box(cols, rows, cell)
    # Rounding (not ceil) keeps the stretch a terminal applies to fill whole cells under half a cell.
    return min(cols, max(1, round(size[0] / cw))), min(rows, max(1, round(size[1] / ch)))


def _check_box(cols: int, rows: int, cell: tuple[int, int]) -> tuple[int, int]:
    if cols < 1 or rows < 1:
        raise ValueError(f"preview box must be at least 1x1 cells, not {cols}x{rows}")
    cw, ch = cell
    if cw < 1 or ch < 1:
        raise ValueError(f"cell size must be positive, not {cw}x{ch}")
    return cw, ch


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    # Level 1: the bytes go to a local terminal, so encode time matters more than size.
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# --------------------------------------------------------------------------- kitty


def kitty_chunks(
    image: Image.Image,
    cols: int,
    rows: int,
    cell: tuple[int, int] = DEFAULT_CELL,
    *,
    move_cursor: bool = True,
) -> list[bytes]:
    """The kitty graphics escapes (one per 4096-byte base64 chunk) that draw `image` at the cursor."""
    scaled = scale_to_cells(image, cols, rows, cell)
    return _kitty_chunks(scaled, cells_for(scaled.size, cols, rows, cell), move_cursor=move_cursor)


def _kitty_chunks(scaled: Image.Image, cells: tuple[int, int], *, move_cursor: bool = True) -> list[bytes]:
    payload = base64.standard_b64encode(_png(scaled))
    parts = [payload[i : i + KITTY_CHUNK] for i in range(0, len(payload), KITTY_CHUNK)] or [b""]
    # q=2: never answer, so no reply bytes land in the user's input; C=1 keeps the cursor put.
    head = f"a=T,f=100,q=2,c={cells[0]},r={cells[1]}" + ("" if move_cursor else ",C=1")
    out = []
    for i, part in enumerate(parts):
        more = 1 if i < len(parts) - 1 else 0
        # Only the first chunk carries the image keys; later ones repeat q=2 so none is answered.
        keys = f"{head},m={more}" if i == 0 else f"q=2,m={more}"
        out.append(b"\x1b_G" + keys.encode() + b";" + part + ST)
    return out


def encode_kitty(image: Image.Image, cols: int, rows: int, cell: tuple[int, int] = DEFAULT_CELL) -> bytes:
    """Kitty graphics protocol: PNG (f=100), transmitted and shown (a=T), sized c×r cells."""
    return b"".join(kitty_chunks(image, cols, rows, cell))


# --------------------------------------------------------------------------- iTerm2


def encode_iterm(
    image: Image.Image,
    cols: int,
    rows: int,
    cell: tuple[int, int] = DEFAULT_CELL,
    *,
    name: str | None = None,
) -> bytes:
    """iTerm2 inline image (OSC 1337 File=…): a base64 PNG sized in cells, BEL-terminated."""
    scaled = scale_to_cells(image, cols, rows, cell)
    return _iterm(scaled, cells_for(scaled.size, cols, rows, cell), name)


def _iterm(scaled: Image.Image, cells: tuple[int, int], name: str | None = None) -> bytes:
    data = _png(scaled)
    args = f"inline=1;size={len(data)};width={cells[0]};height={cells[1]};preserveAspectRatio=1"
    if name:
        args = "name=" + base64.standard_b64encode(name.encode()).decode() + ";" + args
    return b"\x1b]1337;File=" + args.encode() + b":" + base64.standard_b64encode(data) + BEL


# --------------------------------------------------------------------------- sixel


def encode_sixel(
    image: Image.Image,
    cols: int,
    rows: int,
    cell: tuple[int, int] = DEFAULT_CELL,
    *,
    colors: int = 256,
    dither: bool = True,
) -> bytes:
    """Sixel (DCS q … ST) of `image` scaled into cols×rows cells, ≤ `colors` palette registers."""
    scaled = scale_to_cells(image, cols, rows, cell)
    return encode_sixel_pixels(scaled, colors=colors, dither=dither)


def encode_sixel_pixels(image: Image.Image, *, colors: int = 256, dither: bool = True) -> bytes:
    """Sixel of `image` at its own pixel size (no scaling); alpha is composited first."""
    from vchat.ui.sixel import sixel_from_indices, sixel_palette

    indices, palette = sixel_palette(flatten(image), colors, dither=dither)
    return sixel_from_indices(indices, palette)


# --------------------------------------------------------------------------- half-blocks


def encode_blocks(image: Image.Image, cols: int, rows: int, cell: tuple[int, int] = DEFAULT_CELL) -> bytes:
    """Truecolor half-blocks: one "▀" per cell, fg = upper pixel, bg = lower pixel, reset per line."""
    cw, ch = _check_box(cols, rows, cell)
    flat = flatten(image)
    # Each half-block pixel is cw × ch/2 screen pixels; fit in screen pixels, then sample.
    w_px, h_px = fit_size(flat.width, flat.height, cols * cw, rows * ch)
    size = (min(cols, max(1, round(w_px / cw))), min(2 * rows, max(1, round(2 * h_px / ch))))
    import numpy as np

    return blocks_from_pixels(np.asarray(_resize(flat, size), dtype=np.uint8))


def blocks_from_pixels(pixels: np.ndarray) -> bytes:
    """Half-block lines for an H×W×3 uint8 array: one text row per two pixel rows."""
    height = pixels.shape[0]
    lines: list[str] = []
    for y in range(0, height, 2):
        top = pixels[y].tolist()
        bottom = pixels[y + 1].tolist() if y + 1 < height else None
        parts: list[str] = []
        prev_fg: Sequence[int] | None = None
        prev_bg: Sequence[int] | None = None
        for x, fg in enumerate(top):
            # Repeat an SGR only when the colour changes: flat areas cost one byte per cell.
            if fg != prev_fg:
                parts.append(f"\x1b[38;2;{fg[0]};{fg[1]};{fg[2]}m")
                prev_fg = fg
            if bottom is not None:
                bg = bottom[x]
                if bg != prev_bg:
                    parts.append(f"\x1b[48;2;{bg[0]};{bg[1]};{bg[2]}m")
                    prev_bg = bg
            parts.append("▀")
        # An odd last row has no lower pixel: the default background shows below it.
        parts.append("\x1b[0m\n")
        lines.append("".join(parts))
    return "".join(lines).encode()


# --------------------------------------------------------------------------- tmux, dispatch


def tmux_wrap(data: bytes) -> bytes:
    """Wrap escapes in a tmux passthrough (ESC Ptmux; … ESC \\), doubling every inner ESC."""
    return b"\x1bPtmux;" + data.replace(ESC, ESC + ESC) + ST


def caption(path: str | Path, handle: str | None = None) -> str:
    """The line shown under a preview: "img3  path/to/img3.png", or the path alone."""
    return f"{handle}  {path}" if handle else str(path)


def _sixel_under(image: Image.Image, limit: int) -> tuple[Image.Image, bytes]:
    """The sixel of `image`, made smaller until it (with tmux's doubled ESCs and wrapper) fits in `limit` bytes."""
    data = encode_sixel_pixels(image)
    for _ in range(4):
        if len(data) + 64 <= limit or min(image.size) <= 16:
            break
        # Sixel size grows with the pixel count: shrink the area by the overshoot, with a margin.
        factor = math.sqrt(limit / (len(data) + 64)) * 0.9
        image = _resize(image, (max(1, int(image.width * factor)), max(1, int(image.height * factor))))
        data = encode_sixel_pixels(image)
    return image, data


def render_preview(
    image: Image.Image,
    mode: str,
    *,
    cols: int,
    rows: int,
    cell_px: tuple[int, int] = DEFAULT_CELL,
    tmux: bool = False,
    placeholders: bool = False,
) -> bytes:
    """Bytes that show `image` in a cols×rows cell box in `mode`, ending at the start of a line.

    With `tmux`, graphics go through passthrough: space is reserved with newlines first (so
    tmux scrolls and knows the lines are taken), the picture is drawn inside a saved/restored
    cursor, then the cursor is moved below it in tmux's own model of the screen. With
    `placeholders` too (kitty mode, a terminal that draws kitty's Unicode placeholders), the
    picture is sent through passthrough once and shown by placeholder text that tmux keeps.
    """
    if mode == "none":
        return b""
    if mode == "blocks":
        return encode_blocks(image, cols, rows, cell_px)
    if mode not in MODES:
        raise ValueError(f"preview mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not tmux:
        if mode == "kitty":
            return encode_kitty(image, cols, rows, cell_px) + b"\n"
        if mode == "iterm":
            return encode_iterm(image, cols, rows, cell_px) + b"\n"
        return encode_sixel(image, cols, rows, cell_px) + b"\n"

    scaled = scale_to_cells(image, cols, rows, cell_px)
    cells = cells_for(scaled.size, cols, rows, cell_px)
    if mode == "kitty" and placeholders and max(cells) <= PLACEHOLDER_CELLS:
        from vchat.ui.kitty_unicode import new_image_id, placeholder_text, transmit_chunks

        image_id = new_image_id()
        sent = b"".join(tmux_wrap(c) for c in transmit_chunks(_png(scaled), cells, image_id))
        return sent + placeholder_text(cells, image_id)
    if mode == "kitty":
        # Each chunk in its own passthrough: tmux drops passthrough sequences over ~1 MB.
        chunks = _kitty_chunks(scaled, cells, move_cursor=False)
        drawn = tmux_wrap(b"\x1b7") + b"".join(tmux_wrap(c) for c in chunks) + tmux_wrap(b"\x1b8")
        used_rows = cells[1]
    elif mode == "iterm":
        drawn = tmux_wrap(b"\x1b7" + _iterm(scaled, cells) + b"\x1b8")
        used_rows = cells[1]
    else:
        scaled, sixel = _sixel_under(scaled, TMUX_SEQUENCE_MAX)
        drawn = tmux_wrap(b"\x1b7" + sixel + b"\x1b8")
        # Sixel draws real pixels, so the picture covers every row it touches.
        used_rows = min(rows, math.ceil(scaled.height / cell_px[1]))
    reserve = b"\n" * used_rows + f"\x1b[{used_rows}A".encode()
    return reserve + drawn + b"\n" * used_rows
