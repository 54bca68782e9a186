"""Expand files, folders and globs into batch items, each with a stable output name."""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from vchat.errors import VchatError
from vchat.store.reading import IMAGE_SUFFIXES

MANIFEST_NAME = "manifest.jsonl"  # the batch's record, at the top of the output folder
SESSIONS = ".sessions"  # agent mode: each image's own session, under the output folder
# Bytes of one part of an output name, leaving room for `-NN.png` and a temporary file's prefix and suffix
# under the usual 255-byte limit of a file name.
NAME_BYTES = 200


@dataclass(frozen=True)
class Item:
    """One input of a batch: its file and the output name (relative, no suffix) it maps to."""

    input: str  # absolute path
    name: str  # e.g. "holiday/cat": outputs are OUT/holiday/cat.png, OUT/holiday/cat-2.png …


def _walk(folder: Path) -> list[Path]:
    """Image files under a folder, recursively, hidden files and folders skipped, sorted."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(root) / f for f in sorted(files) if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)
        )
    return found


def expand(sources: list[str], exclude: Path | None = None) -> list[Path]:
    """Every input file, in the order given, each once: files as they are, folders walked, globs expanded.

    A named file is kept whatever its suffix (a bad one is then recorded as failed); folders
    and globs contribute image files only. `exclude` (the output folder) is never read from.
    """
    paths: list[Path] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            found = _walk(path)
        elif path.exists() or path.is_symlink():
            found = [path]
        elif glob.has_magic(source):
            found = [
                Path(p)
                for p in sorted(glob.glob(os.path.expanduser(source), recursive=True))
                if Path(p).is_dir() is False and p.lower().endswith(IMAGE_SUFFIXES)
            ]
            if not found:
                raise VchatError(f"{source}: the pattern matches no image files")
        else:
            raise VchatError(f"{source}: no such file or folder")
        paths.extend(found)
    seen: set[Path] = set()
    unique: list[Path] = []
    skip = exclude.resolve() if exclude is not None else None
    for path in paths:
        absolute = path.absolute()
        resolved = absolute.resolve()
        if resolved in seen or (skip is not None and resolved.is_relative_to(skip)):
            continue
        seen.add(resolved)
        unique.append(absolute)
    if not unique:
        raise VchatError("no input images: give files, folders or globs")
    return unique


def name_items(paths: list[Path]) -> list[Item]:
    """Output names mirror the inputs' folders below their common parent, so equal names never clash.

    `a/cat.jpg` and `b/cat.jpg` become `a/cat` and `b/cat`; `cat.jpg` and `cat.png` in one
    folder become `cat.jpg` and `cat.png` (the suffix kept only where stems collide).
    """
    if not paths:
        return []
    base = Path(os.path.commonpath([str(p.parent) for p in paths]))
    stems = [str(p.relative_to(base).with_suffix("")) for p in paths]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    items = []
    taken: set[str] = set()
    for path, stem in zip(paths, stems, strict=True):
        name = str(path.relative_to(base)) if counts[stem] > 1 else stem
        name = _unique(_owned_name(name.replace(os.sep, "/")), taken)
        taken.add(name)
        items.append(Item(str(path), name))
    return items


def _owned_name(name: str) -> str:
    """An output name that stays a plain path inside the output folder and clear of the batch's own files.

    A part starting with a dot would be hidden (and `.sessions`, `.batch.lock` are the batch's), a
    top folder named like the manifest would stand in its place, and a part longer than a file
    name may be cannot be written: each is changed just enough to be safe.
    """
    parts = []
    for part in name.split("/"):
        if part.startswith("."):
            part = "_" + part[1:]
        if len(os.fsencode(part)) > NAME_BYTES:
            digest = hashlib.sha1(os.fsencode(part)).hexdigest()[:10]
            part = os.fsdecode(os.fsencode(part)[: NAME_BYTES - 11]) + "~" + digest
        parts.append(part or "_")
    if parts[0] == MANIFEST_NAME:
        parts[0] = "_" + parts[0]
    return "/".join(parts)


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `name~2`, `name~3` … when a changed name met another input's."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}~{number}"
    return candidate
