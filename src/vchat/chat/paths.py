"""Image paths a user typed in a message: quoted, @path, ~, escaped spaces, or unquoted with spaces."""

from __future__ import annotations

import os
import re
from pathlib import Path

from vchat.store.reading import IMAGE_SUFFIXES

# A token that ends in an image extension; the path may start earlier (spaces in names).
_IMAGE_TOKEN = re.compile(r"[^\s\"'`]*\.(?:png|jpe?g|webp|bmp|gif|tiff?)(?=$|[\s\"'`,;:!?)])", re.IGNORECASE)
_QUOTED = re.compile(r"(['\"`])(.+?)\1")


def _as_path(text: str) -> Path | None:
    text = text.strip().lstrip("@").rstrip(".,;:!?)")
    text = text.replace("\\ ", " ")
    if not text or not text.lower().endswith(IMAGE_SUFFIXES):
        return None
    path = Path(os.path.expanduser(text))
    return path if path.is_file() else None


def find_image_paths(text: str) -> list[tuple[str, Path]]:
    """Image files a user typed in a message: (the text as typed, the path), in order.

    Quoted paths, `@path`, `~`, escaped spaces, and unquoted paths with spaces (the longest
    span of words ending in an image extension that exists on disk) are all recognised.
    """
    found: list[tuple[int, str, Path]] = []
    taken: list[tuple[int, int]] = []
    for match in _QUOTED.finditer(text):
        path = _as_path(match.group(2))
        if path is not None:
            found.append((match.start(), match.group(0), path))
            taken.append(match.span())
    for match in _IMAGE_TOKEN.finditer(text):
        if any(a <= match.start() < b for a, b in taken):
            continue
        end = match.end()
        # Try longer spans to the left first, so "My Photos/cat.png" beats "Photos/cat.png".
        starts = [m.end() for m in re.finditer(r"\s+", text[: match.start()])][-5:]
        best: tuple[str, Path] | None = None
        for start in [*starts, match.start()]:
            raw = text[start:end]
            path = _as_path(raw)
            if path is not None:
                best = (raw.rstrip(".,;:!?)"), path)
                break
        if best is not None:
            found.append((end - len(best[0]), *best))
            taken.append((end - len(best[0]), end))
    return [(typed, path) for _, typed, path in sorted(found, key=lambda item: item[0])]
