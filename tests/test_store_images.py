from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.helpers import photo, write_photo

from vchat.errors import ImageError, UnknownImageError, UnsafePathError
from vchat.store.images import ImageStore, open_image
from vchat.store.refs import read_png_record

LIMIT = 64_000_000


def _store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "session", LIMIT)


# -- the bad-input table: each a one-line ImageError -------------------------------------
def _truncated_png(p: Path) -> None:
    buf = io.BytesIO()
    photo().save(buf, "PNG")
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def _truncated_jpeg(p: Path) -> None:
    buf = io.BytesIO()
    photo(256, 256).save(buf, "JPEG")
    p.write_bytes(buf.getvalue()[:300])


def _bomb(p: Path) -> None:
    # A valid PNG header that declares 100000 x 100000 pixels: refused before decoding.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)))


BAD = {
    "missing": (lambda p: None, "no such file"),
    "directory": (lambda p: p.mkdir(), "is a folder"),
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
    "truncated_png": (_truncated_png, "damaged or truncated"),
    "truncated_jpeg": (_truncated_jpeg, "damaged or truncated"),
    "text_named_png": (lambda p: p.write_text("hello, I am not an image\n"), "not an image"),
    "bomb": (_bomb, "over the limit"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_one_line_errors(tmp_path: Path, case: str) -> None:
    make, message = BAD[case]
    path = tmp_path / f"{case}.png"
    make(path)
    store = _store(tmp_path)
    with pytest.raises(ImageError) as info:
        store.attach(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert len(store) == 0


def test_store_goes_on_after_a_bad_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    good = write_photo(tmp_path)
    assert store.attach(good).handle == "img1"
    (tmp_path / "bad.png").write_text("nope")
    with pytest.raises(ImageError):
        store.attach(tmp_path / "bad.png")
    assert store.attach(good).handle == "img2"
    assert store.get("img1").path.is_file()


# -- unusual but valid images are normalised -----------------------------------------------
def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    photo().convert("CMYK").save(path)
    image, _ = open_image(path, LIMIT)
    assert image.mode == "RGB"


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    arr = np.full((8, 8), 32768, dtype=np.uint16)
    Image.fromarray(arr).save(path)
    image, _ = open_image(path, LIMIT)
    assert image.mode == "RGB"
    assert 120 <= image.getpixel((0, 0))[0] <= 135


def test_palette_png_with_transparency_keeps_alpha(tmp_path: Path) -> None:
    path = tmp_path / "pal.png"
    pal = photo().convert("P")
    pal.info["transparency"] = 0
    pal.save(path, transparency=0)
    image, _ = open_image(path, LIMIT)
    assert image.mode == "RGBA"


def test_rgba_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    photo().convert("RGBA").save(path)
    assert open_image(path, LIMIT)[0].mode == "RGBA"


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    photo(60, 40).save(path, exif=exif)
    image, _ = open_image(path, LIMIT)
    assert image.size == (40, 60)


def test_animated_gif_takes_first_frame_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [photo(seed=i).convert("P") for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    ref = _store(tmp_path).attach(path)
    assert ref.note == "first frame of 3"


@pytest.mark.parametrize("name", ["my photo.png", "фото 猫.png"])
def test_paths_with_spaces_and_unicode(tmp_path: Path, name: str) -> None:
    path = write_photo(tmp_path, name)
    ref = _store(tmp_path).attach(path)
    assert ref.source == str(path.resolve())


def test_tilde_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_photo(tmp_path, "home.png")
    ref = _store(tmp_path).attach("~/home.png")
    assert ref.width == 64


# -- outputs, lineage, names -------------------------------------------------------------
def test_outputs_are_atomic_and_carry_lineage(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.attach(write_photo(tmp_path))
    second = store.save(photo(), tool="canny_edges", params={"low": 5}, parents=(first.handle,))
    third = store.save(photo(), tool="resize_image", params={}, parents=(second.handle,), seed=7)
    assert third.path.name == "img3-resize_image.png"
    record = read_png_record(third.path)
    assert record is not None
    assert record["tool"] == "resize_image"
    assert record["seed"] == 7
    assert record["lineage"] == ["img2", "img1"]
    assert [r.handle for r in store.ancestors("img3")] == ["img2", "img1"]
    assert not [p for p in store.folder.iterdir() if p.name.endswith(".tmp")]


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.folder.mkdir(parents=True)

    class Broken:
        size = (4, 4)
        mode = "RGB"

        def save(self, *args: object, **kwargs: object) -> None:
            raise OSError("disk full")

    # A full disk is one line (ImageError names the file), and no temporary file is left behind.
    with pytest.raises(ImageError, match=r"cannot write img1-x\.png .*disk full"):
        store.save(Broken(), tool="x", parents=())  # type: ignore[arg-type]
    assert list(store.folder.iterdir()) == []
    assert len(store) == 0


def test_resolve_accepts_handles_file_names_and_paths(tmp_path: Path) -> None:
    store = _store(tmp_path)
    source = write_photo(tmp_path, "cat.png")
    ref = store.attach(source)
    made = store.save(photo(), tool="canny_edges", parents=(ref.handle,))
    assert store.resolve("IMG1") is ref
    assert store.resolve("`img2`") is made
    assert store.resolve("img2-canny_edges.png") is made
    assert store.resolve(str(made.path)) is made
    assert store.resolve("cat.png") is ref
    assert store.resolve(str(source)) is ref


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "~/.ssh/id_rsa", "other.png"])
def test_resolve_refuses_paths_the_session_does_not_know(tmp_path: Path, name: str) -> None:
    store = _store(tmp_path)
    store.attach(write_photo(tmp_path))
    with pytest.raises(UnsafePathError) as info:
        store.resolve(name)
    assert "img1" in str(info.value)


def test_unknown_handle_lists_known_images(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.attach(write_photo(tmp_path))
    with pytest.raises(UnknownImageError, match="known images: img1"):
        store.resolve("img7")


def test_load_refuses_a_symlink_that_escapes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ref = store.attach(write_photo(tmp_path))
    outside = write_photo(tmp_path / "elsewhere", "secret.png")
    ref.path.unlink()
    os.symlink(outside, ref.path)
    with pytest.raises(UnsafePathError):
        store.load(ref)


def test_png_record_is_json(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ref = store.attach(write_photo(tmp_path))
    with Image.open(ref.path) as img:
        assert json.loads(img.info["vchat"])["handle"] == "img1"


def test_known_list_names_older_images_briefly(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.attach(write_photo(tmp_path))
    for _ in range(4):
        store.save(photo(), tool="flip_image", parents=(first.handle,))
    text = store.known_list(recent=2)
    assert text.startswith("earlier img1, img2, img3; recent: img4 (")
    assert "img5 (" in text and "img1 (" not in text
    assert store.known_list().count("(") == 5


def _idat(data: bytes) -> bytes:
    """The concatenated image-data chunks of a PNG (the encoded pixels)."""
    import struct

    pos, found = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            found += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return found


def test_attached_png_keeps_its_bytes(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    photo().save(source, compress_level=1)  # not how vchat would encode it: a re-encode would show
    store = _store(tmp_path)
    ref = store.attach(source)
    store.flush()
    copy = ref.path.read_bytes()
    # Not re-encoded: the very same compressed pixels, plus vchat's record chunk naming the source.
    assert _idat(copy) == _idat(source.read_bytes())
    record = read_png_record(ref.path)
    assert record is not None and record["source"] == str(source.resolve())
    assert np.array_equal(np.asarray(store.load(ref)), np.asarray(Image.open(source).convert("RGB")))
    # Loading again (pixels no longer cached) decodes the copy: the same pixels.
    assert np.array_equal(np.asarray(store.load(ref)), np.asarray(Image.open(source).convert("RGB")))


def test_outputs_name_the_source_of_their_lineage(tmp_path: Path) -> None:
    source = write_photo(tmp_path, "in.png")
    store = _store(tmp_path)
    first = store.attach(source)
    made = store.save(photo(), tool="flip_image", parents=(first.handle,))
    record = read_png_record(made.path)
    assert record is not None and record["sources"] == {"img1": str(source.resolve())}


def test_attached_jpeg_is_stored_as_png(tmp_path: Path) -> None:
    source = tmp_path / "in.jpg"
    photo().save(source, quality=90)
    store = _store(tmp_path)
    ref = store.attach(source)
    store.flush()
    with Image.open(ref.path) as img:
        assert img.format == "PNG"


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16", "P"])
def test_encoded_png_round_trips_with_its_record(mode: str) -> None:
    from vchat.store.files import encode_png

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (30, 40, 4), dtype=np.uint8), "RGBA")
    image = image if mode == "RGBA" else image.convert(mode)
    back = Image.open(io.BytesIO(encode_png(image, {"tool": "café"})))
    assert back.mode == image.mode and np.array_equal(np.asarray(back), np.asarray(image))
    assert json.loads(back.info["vchat"]) == {"tool": "café"}
