"""Atomic image files: PNG encoding with vchat's lineage chunk, and write-then-rename to the final name."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import stat
import struct
import tempfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image, PngImagePlugin

PNG_META_KEY = "vchat"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TMP_SUFFIX = ".vchat.tmp"  # unfinished writes; a crash may leave one, never a half file under the real name
PNG_END = b"IEND\xaeB`\x82"  # the last 8 bytes of every whole PNG

# Two ways to encode a PNG (setting `png_compression`, the same for sessions and batches):
# - "fast" (default): level 1 and one fixed row filter (Paeth for colour; for one-channel maps such as
#   edges and masks, OpenCV's defaults: Sub and zlib's run-length strategy, what cv2.imwrite does):
#   3-5x faster than "small", colour photos ~7-12% bigger, edge maps about the same size. Encoding
#   sits on every tool's path (a 512x512 photo: ~50 ms vs ~150 ms for "small" on one slow core, and
#   several times that for a 1024x1024 generation), which a user waits for; 7-12% of disk is cheaper.
# - "small": zlib level 6 with libpng's adaptive row filters, what Pillow, libpng and most tools write;
#   for archives where size matters more than seconds.
PNG_STYLES = ("fast", "small")
_PILLOW_LEVEL = {"fast": 1, "small": 6}


def _cv2_params(cv2: Any, style: str, channels: int) -> list[int]:
    if style == "small":
        # Naming a level switches OpenCV to zlib's default strategy; every filter lets libpng pick per row.
        return [cv2.IMWRITE_PNG_COMPRESSION, 6, *_filter(cv2, "IMWRITE_PNG_ALL_FILTERS")]
    if channels == 1:
        # Maps (edges, masks, depth) are long runs of one value: OpenCV's own defaults (the Sub filter
        # and zlib's run-length strategy) find them at nearly Huffman-only speed.
        # (Naming a level without a filter would switch libpng to its slow adaptive choice.)
        rle = [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
        return [cv2.IMWRITE_PNG_COMPRESSION, 1, *rle, *_filter(cv2, "IMWRITE_PNG_FILTER_SUB")]
    # Colour: Paeth predicts photos and renders best of the single filters, at the same speed as Sub.
    return [cv2.IMWRITE_PNG_COMPRESSION, 1, *_filter(cv2, "IMWRITE_PNG_FILTER_PAETH")]


def _filter(cv2: Any, name: str) -> list[int]:
    # IMWRITE_PNG_FILTER came with OpenCV 4.11; older ones keep libpng's own choice.
    key = getattr(cv2, "IMWRITE_PNG_FILTER", None)
    return [] if key is None else [key, getattr(cv2, name)]


def encode_png(image: Image.Image, record: Mapping[str, Any], style: str = "small") -> bytes:
    """The PNG bytes of an image with `record` in its `vchat` text chunk, encoded `style` (fast or small).

    8-bit L, RGB and RGBA go through OpenCV's encoder (it releases the GIL, so batch writer
    threads encode beside the model); the record chunk is then spliced in.
    """
    if isinstance(image, Image.Image) and image.mode in _CV2_ORDER:
        try:
            import cv2
            import numpy as np
        except ImportError:  # opencv is a dependency; Pillow stays the fallback all the same
            pass
        else:
            arr = np.asarray(image)
            order = _CV2_ORDER[image.mode]
            if order is not None:
                arr = cv2.cvtColor(arr, order)
            ok, encoded = cv2.imencode(".png", arr, _cv2_params(cv2, style, 1 if arr.ndim == 2 else arr.shape[2]))
            if ok:
                return png_with_record(encoded.tobytes(), record)
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_META_KEY, json.dumps(record, default=str))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=_PILLOW_LEVEL.get(style, 6))
    return buffer.getvalue()


def _cv2_orders() -> dict[str, int | None]:
    # Pillow's channel order -> OpenCV's (BGR); None: as it is.
    return {"L": None, "RGB": 4, "RGBA": 5}  # cv2.COLOR_RGB2BGR, cv2.COLOR_RGBA2BGRA (constants, no import)


_CV2_ORDER = _cv2_orders()


def sync_file(path: Path) -> None:
    """Force a file's bytes to disk (for power loss; a killed process loses nothing the OS has)."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def sync_folder(folder: Path) -> None:
    """Force a folder's entries (files created or renamed in it) to disk; a no-op where folders cannot be synced."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.EACCES):  # file systems that cannot sync a folder
            raise
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.stem}-", suffix=TMP_SUFFIX, dir=path.parent)


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write bytes under a temporary name, sync them, then rename: `path` is whole or absent.

    `durable` syncs before the rename, so even a power loss cannot leave a truncated file
    under the real name (a killed process never can: the rename is what publishes it).
    """
    _publish(path, lambda fh: fh.write(data), durable)


def _publish(path: Path, fill: Callable[[BinaryIO], object], durable: bool) -> None:
    """Fill a temporary file beside `path`, sync it when `durable`, then rename it to `path` (or remove it)."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def link_or_copy(source: Path, path: Path) -> None:
    """Publish an existing finished file under a second name: a hard link when possible, else a copy."""
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        os.unlink(tmp)
        try:
            os.link(source, tmp)
        except OSError:  # another file system, or links not allowed: copy the bytes instead
            shutil.copyfile(source, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open_regular(path: Path) -> BinaryIO:
    """A regular file opened for reading; a FIFO or device in its place is an OSError, never a blocked open."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return os.fdopen(fd, "rb")


def is_plain_png(path: Path) -> bool:
    """True when a file is a PNG by its signature (stored losslessly: its bytes can be reused as they are)."""
    try:
        with _open_regular(path) as fh:
            return fh.read(8) == PNG_SIGNATURE
    except OSError:
        return False


def remove_stale_temps(folder: Path) -> int:
    """Delete unfinished writes a killed run left in a folder tree; returns how many."""
    count = 0
    for tmp in folder.rglob(f".*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)
        count += 1
    return count


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_with_record(data: bytes, record: Mapping[str, Any]) -> bytes:
    """The same PNG with `record` as its `vchat` text chunk: pixel data untouched, no decode or encode.

    The chunk goes right after IHDR (readers see text before the image data without
    loading it); a `vchat` chunk the file already had (an earlier vchat output) is dropped.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    payload = json.dumps(record, default=str, ensure_ascii=True).encode("ascii")
    text = _chunk(b"tEXt", PNG_META_KEY.encode("ascii") + b"\0" + payload)
    parts = [PNG_SIGNATURE]
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        body = data[pos + 8 : pos + 8 + length]
        ours = kind in (b"tEXt", b"zTXt", b"iTXt") and body.split(b"\0", 1)[0] == PNG_META_KEY.encode()
        if not ours:
            parts.append(data[pos:end])
        if kind == b"IHDR":
            parts.append(text)
        pos = end
        if kind == b"IEND":
            break
    return b"".join(parts)


def is_whole_png(path: Path) -> bool:
    """True when a file starts and ends like a complete PNG (cheap: reads 16 bytes, no decode)."""
    try:
        with _open_regular(path) as fh:
            if fh.read(8) != PNG_SIGNATURE:
                return False
            fh.seek(-8, os.SEEK_END)
            return fh.read(8) == PNG_END
    except OSError:
        return False
