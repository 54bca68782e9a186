"""Sixel encoder (DCS q … ST): quantise with Pillow, then write the bands vectorised with numpy.

A module of its own so previews in other modes, and `vchat --help`, never import numpy.
"""

from __future__ import annotations

import functools
from typing import Final

import numpy as np
from PIL import Image, features

# Five decimal digits per number in the sixel writer; far beyond any terminal.
SIXEL_MAX_WIDTH: Final = 99_999
SIXEL_SLICE_PIXELS: Final = 98_304
# From this size on (512²) the palette is chosen on a half-size copy.
PALETTE_SAMPLE_PIXELS: Final = 262_144
ST: Final = b"\x1b\\"


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
    # The palette is chosen on a half-size copy: a quarter of the pixels give the same colours
    # (mean error within 1% on a 1024² photo) for a quarter of the octree's time; every pixel is mapped below.
    sample = rgb.reduce(2) if rgb.width * rgb.height >= PALETTE_SAMPLE_PIXELS else rgb
    quant = sample.quantize(colors, method=_quantize_method())
    if sample is not rgb and not dither:
        quant = rgb.quantize(palette=quant, dither=Image.Dither.NONE)
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
