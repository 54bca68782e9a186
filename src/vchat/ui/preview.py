"""Inline image previews: pure encoders for kitty, iTerm2, sixel and truecolor half-blocks."""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, features

MODES: Final = ("kitty", "iterm", "sixel", "blocks", "none")
DEFAULT_CELL: Final = (10, 20)
# Mid grey reads as "transparent" on both dark and light terminal themes.
NEUTRAL_BG: Final = (128, 128, 128)
# Small images (icons, 64² masks) may grow to stay legible, but not into a blur.
MAX_UPSCALE: Final = 2.0
# Growing a picture by a few percent to fill whole cells only softens it, and costs a resample of every pixel.
SLIGHT_UPSCALE: Final = 1.05
KITTY_CHUNK: Final = 4096
# Five decimal digits per number in the sixel writer; far beyond any terminal.
SIXEL_MAX_WIDTH: Final = 99_999
SIXEL_SLICE_PIXELS: Final = 98_304

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


def _quantize_method() -> Image.Quantize:
    # libimagequant gives the best palettes but is rarely compiled into Pillow (GPL);
    # fast octree is the next best of Pillow's C quantisers and ~15x faster than median cut.
    if features.check_feature("libimagequant"):
        return Image.Quantize.LIBIMAGEQUANT
    return Image.Quantize.FASTOCTREE


def sixel_palette(image: Image.Image, colors: int = 256, *, dither: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Quantise an RGB image to (indices uint8 H×W, palette uint8 N×3) with N ≤ `colors`.

    Images that already have few colours (masks, edge maps, segmentations) keep them exactly;
    photos go through Pillow's C quantiser and Floyd–Steinberg dithering.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    exact = rgb.getcolors(colors)  # None as soon as there are more than `colors`
    if exact is not None:
        palette = np.array([c for _, c in exact], dtype=np.uint8).reshape(-1, 3)
        # Pillow's palette mapping goes through a 5-bit cache that merges near colours,
        # so exact colours are mapped here by their packed 24-bit value.
        packed = _packed(rgb)
        keys = _packed(Image.fromarray(palette.reshape(1, -1, 3), "RGB")).ravel()
        order = np.argsort(keys)
        pos = np.searchsorted(keys[order], packed)
        return order.astype(np.uint8)[pos], palette
    quant = rgb.quantize(colors, method=_quantize_method())
    if dither:
        quant = rgb.quantize(palette=quant, dither=Image.Dither.FLOYDSTEINBERG)
    indices = np.asarray(quant, dtype=np.uint8)
    raw = quant.getpalette() or []
    palette = np.array(raw[: 3 * (int(indices.max()) + 1)], dtype=np.uint8).reshape(-1, 3)
    return indices, palette


def _packed(rgb: Image.Image) -> np.ndarray:
    """Each pixel as one uint32 (R, G, B, pad bytes), converted in C rather than numpy."""
    return np.asarray(rgb.convert("RGBX")).view(np.uint32).reshape(rgb.height, rgb.width)


def sixel_from_indices(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """Sixel DCS for a palette image: `indices` H×W into `palette` N×3 (N ≤ 256), 1:1 pixels.

    Vectorised with numpy: cells (band, column, colour) → colour lines (radix-sorted) → runs →
    fixed-size words from lookup tables, whose unused zero bytes are dropped in one pass.
    """
    idx = np.ascontiguousarray(indices, dtype=np.uint8)
    if idx.ndim != 2 or idx.size == 0:
        raise ValueError("indices must be a non-empty 2-D array")
    height, width = idx.shape
    if width > SIXEL_MAX_WIDTH:
        raise ValueError(f"sixel width {width} is over {SIXEL_MAX_WIDTH}")
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    # Pillow's C histogram: numpy's bincount would first widen a megapixel to 8-byte ints.
    counts = np.array(Image.fromarray(idx, "L").histogram())
    used = np.flatnonzero(counts)
    if pal.shape[0] > 256 or int(used[-1]) >= pal.shape[0]:
        raise ValueError("palette must hold ≤256 colours covering every index")

    pct = (pal.astype(np.uint32) * 100 + 127) // 255
    header = "".join(f"#{i};2;{pct[i, 0]};{pct[i, 1]};{pct[i, 2]}" for i in used.tolist())
    head = b'\x1bPq"1;1;' + f"{width};{height}".encode() + header.encode()
    return head + _sixel_body(idx) + ST


def _sixel_body(idx: np.ndarray) -> bytes:
    """The sixel data of a palette image, encoded a slice of bands at a time, joined by "-"."""
    # ~100k pixels per slice keeps every temporary small enough for malloc to reuse: one pass
    # over a megapixel spends a third of its time page-faulting in fresh memory. At most 256
    # bands per slice, so (band, colour) fits the 16-bit key that numpy radix-sorts.
    bands = max(4, min(256, SIXEL_SLICE_PIXELS // (6 * idx.shape[1])))
    step = 6 * bands
    return b"-".join(_sixel_bands(idx[top : top + step]) for top in range(0, idx.shape[0], step))


def _sixel_bands(idx: np.ndarray) -> bytes:
    height, width = idx.shape
    bands = (height + 5) // 6
    pad = bands * 6 - height
    if pad:
        # Padding rows repeat the last real row, so they never own a cell, and carry weight 0,
        # so they never set a bit below the image.
        idx = np.concatenate([idx, np.repeat(idx[-1:], pad, axis=0)])
    rows = idx.reshape(bands, 6, width)
    weight = np.tile(np.array([1, 2, 4, 8, 16, 32], dtype=np.uint8), (bands, 1))
    if pad:
        weight[-1, 6 - pad :] = 0
    r = [rows[:, k, :] for k in range(6)]
    w = [weight[:, k : k + 1] for k in range(6)]

    # For each pixel row k of a band: the sixel value of its colour in that column (OR of the
    # rows sharing the colour), and whether k is the first row with that colour (the cell owner).
    values = np.empty((bands, width, 6), dtype=np.uint8)
    owner = np.empty((bands, width, 6), dtype=bool)
    for k in range(6):
        v = np.broadcast_to(w[k], (bands, width)).copy()
        first = np.ones((bands, width), dtype=bool)
        for j in range(6):
            if j == k:
                continue
            same = r[j] == r[k]
            v += same.view(np.uint8) * w[j]
            if j < k:
                first &= ~same
        values[:, :, k] = v
        owner[:, :, k] = first

    # Cells in (band, column, row) order; the stable sort by (band, colour) below keeps the
    # columns of each colour line ascending. Chunks hold ≤ 256 bands so the key fits 16 bits.
    pos = np.flatnonzero(owner)
    band_key = np.arange(bands, dtype=np.uint16)[:, None, None] << 8
    line_key = (band_key | rows.transpose(0, 2, 1)).ravel()[pos]
    order = np.argsort(line_key, kind="stable")  # 16-bit keys: numpy uses radix sort
    pos = pos[order]
    key = line_key[order].astype(np.int32)
    x = ((pos // 6) % width).astype(np.int32)
    v = values.ravel()[pos]
    n = key.size

    # Runs: consecutive columns of one colour line with the same sixel value.
    line_start = np.ones(n, dtype=bool)
    np.not_equal(key[1:], key[:-1], out=line_start[1:])
    run_start = line_start.copy()
    run_start[1:] |= (x[1:] != x[:-1] + 1) | (v[1:] != v[:-1])
    rs = np.flatnonzero(run_start)
    nruns = rs.size
    length = np.diff(rs, append=n).astype(np.int32)
    rx = x[rs]
    rkey = key[rs]
    new_line = line_start[rs]
    # Empty sixels before a run: from column 0 on a new line, else from the previous run's end.
    gap = rx.copy()
    gap[1:] -= (rx[:-1] + length[:-1]) * ~new_line[1:]

    # Output as little-endian 8-byte words: per run the empty sixels ("?") before it, then the
    # run itself (+ "$" or "-" in its top byte), with a "#c" word before each colour line.
    # Words come from per-count lookup tables; zero bytes are dropped when they are joined.
    spelled, is_char, colour_word = _sixel_words(width)
    starts = np.flatnonzero(new_line)
    base = 2 * np.arange(nruns) + np.cumsum(new_line)  # word index of each run's gap word
    words = np.empty(2 * nruns + starts.size, dtype="<u8")
    words[base[starts] - 1] = colour_word[rkey[starts] & 255]
    words[base] = spelled[gap]
    run_word = spelled[length]
    run_word += is_char[length] * v[rs].astype("<u8")  # "?" (63) + sixel bits = the character
    # "$" returns to the band start for the next colour, "-" moves down to the next band.
    ends = np.flatnonzero(new_line[1:])
    suffix = np.where((rkey[ends] >> 8) != (rkey[ends + 1] >> 8), ord("-"), ord("$")).astype("<u8")
    run_word[ends] += suffix << np.uint64(56)
    words[base + 1] = run_word
    flat = words.view(np.uint8)
    return flat[flat != 0].tobytes()


@functools.lru_cache(maxsize=8)
def _sixel_words(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lookup tables as 8-byte words: "?" repeated n times (0 ≤ n ≤ width), where its "?"s are, "#c"."""
    digits = len(str(width))  # ≤ 5, so "!" + digits + char fits in 7 bytes
    raw = np.zeros((width + 1, 8), dtype=np.uint8)
    _write_repeat(raw, 0, digits, np.arange(width + 1), np.uint8(ord("?")))
    spelled = raw.view("<u8").ravel()
    is_char = (raw == ord("?")).astype(np.uint8).view("<u8").ravel()
    colour = np.zeros((256, 8), dtype=np.uint8)
    colour[:, 0] = ord("#")
    _write_number(colour, np.arange(256), 1, 3, np.arange(256))
    colour_word = colour.view("<u8").ravel()
    for table in (spelled, is_char, colour_word):
        table.flags.writeable = False
    return spelled, is_char, colour_word


def _write_number(table: np.ndarray, where: np.ndarray, col: int, width: int, number: np.ndarray) -> None:
    """Decimal digits of `number` into `width` slots from `col`; leading slots stay 0 (dropped)."""
    for p in range(width):
        scale = 10 ** (width - 1 - p)
        digit = (48 + (number // scale) % 10).astype(np.uint8)
        if p < width - 1:
            digit[number < scale] = 0
        table[where, col + p] = digit


def _write_repeat(table: np.ndarray, col: int, digits: int, count: np.ndarray, char: np.ndarray | np.uint8) -> None:
    """`char` repeated `count` times in digits+2 slots: "!N" then `char`, or spelled out up to 3."""
    chars = np.broadcast_to(char, count.shape)
    last = col + digits + 1
    table[:, last] = np.where(count > 0, chars, 0)
    # Runs of 2-3 are spelled out (no longer than "!N"); they reuse the "!" and last digit slots.
    short = np.flatnonzero((count == 2) | (count == 3))
    table[short, last - 1] = chars[short]
    three = short[count[short] == 3]
    table[three, col] = chars[three]
    rle = np.flatnonzero(count >= 4)
    table[rle, col] = ord("!")
    _write_number(table, rle, col + 1, digits, count[rle])


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


def render_preview(
    image: Image.Image,
    mode: str,
    *,
    cols: int,
    rows: int,
    cell_px: tuple[int, int] = DEFAULT_CELL,
    tmux: bool = False,
) -> bytes:
    """Bytes that show `image` in a cols×rows cell box in `mode`, ending at the start of a line.

    With `tmux`, graphics go through passthrough: space is reserved with newlines first (so
    tmux scrolls and knows the lines are taken), the picture is drawn inside a saved/restored
    cursor, then the cursor is moved below it in tmux's own model of the screen.
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
    if mode == "kitty":
        # Each chunk in its own passthrough: tmux drops passthrough sequences over ~1 MB.
        chunks = _kitty_chunks(scaled, cells, move_cursor=False)
        drawn = tmux_wrap(b"\x1b7") + b"".join(tmux_wrap(c) for c in chunks) + tmux_wrap(b"\x1b8")
        used_rows = cells[1]
    elif mode == "iterm":
        drawn = tmux_wrap(b"\x1b7" + _iterm(scaled, cells) + b"\x1b8")
        used_rows = cells[1]
    else:
        drawn = tmux_wrap(b"\x1b7" + encode_sixel_pixels(scaled) + b"\x1b8")
        # Sixel draws real pixels, so the picture covers every row it touches.
        used_rows = min(rows, math.ceil(scaled.height / cell_px[1]))
    reserve = b"\n" * used_rows + f"\x1b[{used_rows}A".encode()
    return reserve + drawn + b"\n" * used_rows
