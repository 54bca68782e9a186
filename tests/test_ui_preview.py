"""Inline preview encoders: golden bytes, decoding back, and a sixel2png round trip."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from vchat.ui import preview as P
from vchat.ui import sixel as S

# --------------------------------------------------------------------------- helpers


def decode_sixel(data: bytes) -> tuple[np.ndarray, dict[int, tuple[int, int, int]]]:
    """A strict reference sixel reader: each pixel painted exactly once, nothing past H×W."""
    assert data.startswith(b"\x1bPq") and data.endswith(b"\x1b\\")
    body = data[3:-2].decode("ascii")
    raster = re.match(r'"1;1;(\d+);(\d+)', body)
    assert raster, "raster attributes first"
    width, height = int(raster.group(1)), int(raster.group(2))
    img = np.full((height, width), -1, dtype=np.int64)
    palette: dict[int, tuple[int, int, int]] = {}
    colour_re = re.compile(r"#(\d+)(?:;2;(\d+);(\d+);(\d+))?")
    repeat_re = re.compile(r"!(\d+)([?-~])")
    i, x, band, colour = raster.end(), 0, 0, -1

    def paint(ch: str, n: int) -> None:
        nonlocal x
        bits = ord(ch) - 63
        assert 0 <= bits < 64, ch
        for k in range(6):
            if bits >> k & 1:
                y = band * 6 + k
                assert y < height, "bit set below the image"
                assert x + n <= width, "run past the right edge"
                assert (img[y, x : x + n] == -1).all(), "pixel painted twice"
                img[y, x : x + n] = colour
        x += n

    while i < len(body):
        ch = body[i]
        if ch == "#":
            m = colour_re.match(body, i)
            assert m
            if m.group(2) is not None:
                palette[int(m.group(1))] = (int(m.group(2)), int(m.group(3)), int(m.group(4)))
            else:
                colour = int(m.group(1))
                assert colour in palette, "colour used before it was defined"
            i = m.end()
            continue
        if ch == "!":
            m = repeat_re.match(body, i)
            assert m
            assert int(m.group(1)) >= 4, "runs under 4 are spelled out"
            paint(m.group(2), int(m.group(1)))
            i = m.end()
            continue
        if ch == "$":
            x = 0
        elif ch == "-":
            x, band = 0, band + 1
        else:
            paint(ch, 1)
        i += 1
    assert (img >= 0).all(), "pixel never painted"
    return img, palette


def kitty_parts(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    parts = re.findall(rb"\x1b_G([^;]*);([^\x1b]*)\x1b\\", data)
    assert b"".join(b"\x1b_G" + k + b";" + p + b"\x1b\\" for k, p in parts) == data
    return [(dict(kv.split("=") for kv in k.decode().split(",")), p) for k, p in parts]


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Photo-like: smooth gradients plus noise, thousands of colours."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [
            128 + 100 * np.sin(x / 17.0),
            128 + 100 * np.cos(y / 23.0),
            (x + y) * 255.0 / (width + height),
        ],
        axis=-1,
    )
    noisy = base + rng.normal(0, 3, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


# --------------------------------------------------------------------------- sizing


def test_fit_size_keeps_aspect_and_limits_upscale() -> None:
    assert P.fit_size(1000, 500, 400, 400) == (400, 200)
    assert P.fit_size(500, 1000, 400, 400) == (200, 400)
    assert P.fit_size(10, 10, 400, 400) == (20, 20)  # at most MAX_UPSCALE (2x)
    assert P.fit_size(10, 10, 400, 400, max_upscale=1.0) == (10, 10)
    assert P.fit_size(10000, 1, 50, 50) == (50, 1)  # never 0 pixels
    with pytest.raises(ValueError):
        P.fit_size(0, 10, 10, 10)


def test_scale_to_cells_fits_box_of_cells() -> None:
    scaled = P.scale_to_cells(Image.new("RGB", (1600, 900)), cols=80, rows=24, cell=(10, 20))
    assert scaled.size == (800, 450)
    assert P.cells_for(scaled.size, 80, 24, (10, 20)) == (80, 22)
    with pytest.raises(ValueError):
        P.scale_to_cells(Image.new("RGB", (4, 4)), cols=0, rows=1)


def test_alpha_is_composited_on_neutral_background() -> None:
    rgba = Image.new("RGBA", (2, 2), (255, 0, 0, 0))
    assert P.flatten(rgba).getpixel((0, 0)) == P.NEUTRAL_BG
    half = Image.new("RGBA", (1, 1), (255, 255, 255, 128))
    r, g, b = P.flatten(half).getpixel((0, 0))
    assert 185 <= r <= 195 and r == g == b
    la = Image.new("LA", (1, 1), (0, 0))
    assert P.flatten(la).getpixel((0, 0)) == P.NEUTRAL_BG
    assert P.flatten(Image.new("L", (1, 1), 7)).getpixel((0, 0)) == (7, 7, 7)


# --------------------------------------------------------------------------- half-blocks

R, G, B, W, K = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def test_blocks_golden_4x4() -> None:
    pixels = np.array(
        [
            [R, R, G, G],
            [B, B, W, W],
            [K, K, K, K],
            [K, R, R, K],
        ],
        dtype=np.uint8,
    )
    image = Image.fromarray(pixels, "RGB")
    expected = (
        "\x1b[38;2;255;0;0m\x1b[48;2;0;0;255m▀▀"
        "\x1b[38;2;0;255;0m\x1b[48;2;255;255;255m▀▀\x1b[0m\n"
        "\x1b[38;2;0;0;0m\x1b[48;2;0;0;0m▀\x1b[48;2;255;0;0m▀▀\x1b[48;2;0;0;0m▀\x1b[0m\n"
    ).encode()
    # cell (1, 2): one half-block pixel per image pixel, so no resampling.
    assert P.encode_blocks(image, cols=4, rows=2, cell=(1, 2)) == expected
    assert P.render_preview(image, "blocks", cols=4, rows=2, cell_px=(1, 2)) == expected


def test_blocks_odd_height_leaves_default_background() -> None:
    out = P.blocks_from_pixels(np.array([[R], [G], [B]], dtype=np.uint8))
    assert out == ("\x1b[38;2;255;0;0m\x1b[48;2;0;255;0m▀\x1b[0m\n\x1b[38;2;0;0;255m▀\x1b[0m\n").encode()


def test_blocks_size_follows_cell_aspect() -> None:
    # A square image in 10x20 cells: one cell is 1 pixel wide and 2 tall in half-blocks.
    out = P.encode_blocks(Image.new("RGB", (400, 400), R), cols=20, rows=20, cell=(10, 20))
    lines = out.decode().splitlines()
    assert len(lines) == 10 and all(line.count("▀") == 20 for line in lines)
    assert all(line.endswith("\x1b[0m") for line in lines)


# --------------------------------------------------------------------------- sixel golden


def test_sixel_golden_4x4() -> None:
    indices = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]], dtype=np.uint8)
    palette = np.array([K, W], dtype=np.uint8)
    assert S.sixel_from_indices(indices, palette) == (b'\x1bPq"1;1;4;4#0;2;0;0;0#1;2;100;100;100#0BBKK$#1KKBB\x1b\\')


def test_sixel_golden_runs_gaps_and_bands() -> None:
    indices = np.zeros((7, 6), dtype=np.uint8)
    indices[0, 5] = 2
    indices[6, :] = 1
    palette = np.array([K, R, G], dtype=np.uint8)
    assert S.sixel_from_indices(indices, palette) == (
        b'\x1bPq"1;1;6;7#0;2;0;0;0#1;2;100;0;0#2;2;0;100;0#0!5~}$#2!5?@-#1!6@\x1b\\'
    )


def test_sixel_spells_short_runs_and_omits_unused_colours() -> None:
    indices = np.array([[0, 0, 0, 1, 1, 1, 1]], dtype=np.uint8)
    palette = np.array([K, W, R], dtype=np.uint8)  # colour 2 unused: not defined
    assert S.sixel_from_indices(indices, palette) == (b'\x1bPq"1;1;7;1#0;2;0;0;0#1;2;100;100;100#0@@@$#1???!4@\x1b\\')


@pytest.mark.parametrize(("height", "width"), [(1, 1), (5, 3), (6, 7), (13, 40), (61, 1234), (300, 12), (200, 1000)])
def test_sixel_decodes_to_the_same_indices(height: int, width: int) -> None:
    rng = np.random.default_rng(height * 1000 + width)
    ncolours = int(rng.integers(1, 257))
    # Blocky noise: long runs, long gaps and single pixels all appear.
    coarse = rng.integers(0, ncolours, (height // 3 + 1, width // 5 + 1))
    indices = np.kron(coarse, np.ones((3, 5), dtype=np.int64))[:height, :width]
    speckle = rng.random((height, width)) < 0.1
    indices[speckle] = rng.integers(0, ncolours, int(speckle.sum()))
    palette = rng.integers(0, 256, (ncolours, 3), dtype=np.uint8)
    decoded, pal = decode_sixel(S.sixel_from_indices(indices.astype(np.uint8), palette))
    assert np.array_equal(decoded, indices)
    for i, pct in pal.items():
        assert pct == tuple(round(int(c) * 100 / 255) for c in palette[i])


def test_sixel_more_than_256_bands() -> None:
    indices = (np.arange(1600)[:, None] // 7 % 3 + np.zeros((1, 3), dtype=np.int64)).astype(np.uint8)
    decoded, _ = decode_sixel(S.sixel_from_indices(indices, np.array([K, R, G], dtype=np.uint8)))
    assert np.array_equal(decoded, indices)


def test_sixel_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        S.sixel_from_indices(np.zeros((0, 3), dtype=np.uint8), np.array([K], dtype=np.uint8))
    with pytest.raises(ValueError):
        S.sixel_from_indices(np.array([[0, 1]], dtype=np.uint8), np.array([K], dtype=np.uint8))
    with pytest.raises(ValueError):
        S.sixel_from_indices(np.zeros((1, S.SIXEL_MAX_WIDTH + 1), dtype=np.uint8), np.array([K], dtype=np.uint8))


def test_sixel_palette_is_exact_for_few_colours() -> None:
    # Colours one step apart: Pillow's palette mapping would merge them.
    colours = np.array([[10, 20, 30], [11, 20, 30], [10, 21, 30], [200, 0, 5]], dtype=np.uint8)
    rng = np.random.default_rng(3)
    pixels = colours[rng.integers(0, 4, (9, 11))]
    indices, palette = S.sixel_palette(Image.fromarray(pixels, "RGB"))
    assert np.array_equal(palette[indices], pixels)


def test_sixel_palette_quantises_photos_to_256() -> None:
    image = photo(64, 48)
    indices, palette = S.sixel_palette(image)
    assert indices.shape == (48, 64) and palette.shape[0] <= 256
    error = np.abs(palette[indices].astype(int) - np.asarray(image, dtype=int)).mean()
    assert error < 12


def test_encode_sixel_scales_into_the_box() -> None:
    out = P.encode_sixel(photo(300, 200), cols=10, rows=10, cell=(10, 20))
    assert out.startswith(b'\x1bPq"1;1;100;67#')
    decoded, _ = decode_sixel(out)
    assert decoded.shape == (67, 100)


# --------------------------------------------------------------------------- sixel2png round trip


@pytest.mark.skipif(shutil.which("sixel2png") is None, reason="sixel2png missing (apt-get install libsixel-bin)")
@pytest.mark.parametrize("size", [(96, 70), (257, 131)])
def test_sixel_round_trip_through_sixel2png(size: tuple[int, int]) -> None:
    image = photo(*size, seed=size[0])
    data = P.encode_sixel_pixels(image)
    done = subprocess.run(["sixel2png"], input=data, capture_output=True, timeout=60, check=True)
    back = np.asarray(Image.open(io.BytesIO(done.stdout)).convert("RGB"), dtype=int)
    assert back.shape == (size[1], size[0], 3)
    error = np.abs(back - np.asarray(image, dtype=int)).mean()
    # 256 colours spread over this whole-cube gradient cost ~5-10 levels (img2sixel: 6.6 and
    # 9.1 on these two); a misplaced band, column or colour costs well over 30.
    assert error < 12, f"mean abs error {error:.2f}"


@pytest.mark.skipif(shutil.which("sixel2png") is None, reason="sixel2png missing (apt-get install libsixel-bin)")
def test_sixel_round_trip_exact_colours() -> None:
    rng = np.random.default_rng(5)
    colours = rng.integers(0, 256, (12, 3), dtype=np.uint8)
    pixels = colours[rng.integers(0, 12, (23, 31))]
    data = P.encode_sixel_pixels(Image.fromarray(pixels, "RGB"))
    done = subprocess.run(["sixel2png"], input=data, capture_output=True, timeout=60, check=True)
    back = np.asarray(Image.open(io.BytesIO(done.stdout)).convert("RGB"), dtype=int)
    # Sixel colours are percentages: at most 1.3 levels off, so 1 after rounding.
    assert np.abs(back - pixels.astype(int)).max() <= 2


# --------------------------------------------------------------------------- kitty, iTerm2


def test_kitty_payload_is_chunked_png_of_scaled_image() -> None:
    image = photo(400, 300)
    out = P.encode_kitty(image, cols=40, rows=20, cell=(10, 20))
    parts = kitty_parts(out)
    assert len(parts) > 2
    first, *rest = parts
    keys = first[0]
    assert keys["a"] == "T" and keys["f"] == "100" and keys["q"] == "2"
    assert (keys["c"], keys["r"]) == ("40", "15")
    assert "C" not in keys
    assert [p[0]["m"] for p in parts] == ["1"] * (len(parts) - 1) + ["0"]
    assert all(p[0] == {"q": "2", "m": p[0]["m"]} for p in rest)
    assert all(len(p[1]) == P.KITTY_CHUNK for p in parts[:-1])
    assert 0 < len(parts[-1][1]) <= P.KITTY_CHUNK
    png = base64.b64decode(b"".join(p[1] for p in parts), validate=True)
    decoded = Image.open(io.BytesIO(png))
    assert decoded.format == "PNG"
    expected = P.scale_to_cells(image, 40, 20, (10, 20))
    assert decoded.size == expected.size == (400, 300)
    assert np.array_equal(np.asarray(decoded.convert("RGB")), np.asarray(expected))


def test_kitty_small_image_is_one_chunk_and_can_keep_cursor() -> None:
    chunks = P.kitty_chunks(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), 10, 10, (10, 20), move_cursor=False)
    assert len(chunks) == 1
    (keys, payload), *_ = kitty_parts(chunks[0])
    assert keys["m"] == "0" and keys["C"] == "1"
    png = Image.open(io.BytesIO(base64.b64decode(payload)))
    assert png.size == (16, 16) and png.convert("RGB").getpixel((0, 0)) == P.NEUTRAL_BG


def test_iterm_payload_decodes_to_png() -> None:
    image = photo(120, 60)
    out = P.encode_iterm(image, cols=30, rows=10, cell=(8, 16), name="a.png")
    m = re.fullmatch(rb"\x1b\]1337;File=([^:]*):([A-Za-z0-9+/=]*)\x07", out)
    assert m, out[:80]
    args = dict(kv.split("=", 1) for kv in m.group(1).decode().split(";"))
    png = base64.b64decode(m.group(2), validate=True)
    assert args["inline"] == "1" and args["preserveAspectRatio"] == "1"
    assert int(args["size"]) == len(png)
    assert base64.b64decode(args["name"]) == b"a.png"
    expected = P.scale_to_cells(image, 30, 10, (8, 16))
    assert expected.size == (240, 120)
    assert (args["width"], args["height"]) == ("30", "8")
    decoded = Image.open(io.BytesIO(png))
    assert np.array_equal(np.asarray(decoded.convert("RGB")), np.asarray(expected))


# --------------------------------------------------------------------------- tmux, dispatch


def test_tmux_wrap_doubles_inner_escapes() -> None:
    assert P.tmux_wrap(b"\x1b_Ga=T;\x1b\\") == b"\x1bPtmux;\x1b\x1b_Ga=T;\x1b\x1b\\\x1b\\"
    assert P.tmux_wrap(b"plain") == b"\x1bPtmux;plain\x1b\\"


def unwrap_tmux(data: bytes) -> bytes:
    inner = re.findall(rb"\x1bPtmux;((?:\x1b\x1b|[^\x1b])*)\x1b\\", data)
    return b"".join(chunk.replace(b"\x1b\x1b", b"\x1b") for chunk in inner)


@pytest.mark.parametrize("mode", ["kitty", "iterm", "sixel"])
def test_render_preview_in_tmux_reserves_rows_and_wraps(mode: str) -> None:
    image = photo(200, 100)
    out = P.render_preview(image, mode, cols=20, rows=10, cell_px=(10, 20), tmux=True)
    # 200x100 px in 10x20 cells: 20 columns by 5 rows.
    assert out.startswith(b"\n" * 5 + b"\x1b[5A\x1bPtmux;")
    assert out.endswith(b"\x1b\\" + b"\n" * 5)
    inner = unwrap_tmux(out)
    assert inner.startswith(b"\x1b7") and inner.endswith(b"\x1b8")
    if mode == "kitty":
        assert kitty_parts(inner[2:-2])[0][0]["C"] == "1"
    elif mode == "sixel":
        assert decode_sixel(inner[2:-2])[0].shape == (100, 200)


@pytest.mark.parametrize("mode", ["kitty", "iterm", "sixel"])
def test_render_preview_plain_ends_with_newline(mode: str) -> None:
    out = P.render_preview(photo(30, 20), mode, cols=10, rows=5)
    assert out.endswith(b"\n") and b"tmux" not in out
    assert out.startswith({"kitty": b"\x1b_G", "iterm": b"\x1b]1337;", "sixel": b"\x1bPq"}[mode])


def test_render_preview_none_and_unknown() -> None:
    assert P.render_preview(photo(4, 4), "none", cols=10, rows=5) == b""
    with pytest.raises(ValueError):
        P.render_preview(photo(4, 4), "ascii", cols=10, rows=5)


def test_caption() -> None:
    assert P.caption("out/img3.png", "img3") == "img3  out/img3.png"
    assert P.caption("a b.png") == "a b.png"
