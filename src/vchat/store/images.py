"""Images known to a session: handles, validated loading, atomic PNG outputs with lineage."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from vchat.errors import ImageError, UnknownImageError, UnsafePathError, VchatError
from vchat.store.files import (
    TMP_SUFFIX,
    encode_png,
    is_plain_png,
    png_with_record,
    sync_file,
    sync_folder,
    write_atomic,
)
from vchat.store.reading import normalise_mode, open_image
from vchat.store.refs import HANDLE_RE, ImageRef

# Output and attachment files: img3.png, img4-canny_edges.png.
_FILE_HANDLE_RE = re.compile(r"^(img\d+)(?:-[^/]*)?\.png$", re.IGNORECASE)


def _quoted(name: str, limit: int = 80) -> str:
    """A name the model wrote, quoted for a message and cut: a 1 MB input is not echoed back whole."""
    shown = repr(name)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


class ImageStore:
    """Hands out handles, validates and loads inputs, and writes outputs atomically.

    Every image file is whole under its name the moment `attach` or `save` returns (written
    aside, then renamed), so a killed process never loses or tears one. Forcing it to disk,
    which only a power loss needs, is not on the caller's path: one background thread syncs
    each file, and `commit_later` queues a task behind those syncs (the folder's entries,
    then the session's transcript), so a transcript synced to disk never names an image that
    is not. `flush()` waits for all of it.
    """

    def __init__(self, folder: Path, max_pixels: int = 64_000_000, png: str = "small") -> None:
        self.folder = folder
        self.max_pixels = max_pixels
        self.png = png  # encoding of outputs: "small" or "fast" (see store.files.PNG_STYLES)
        self._refs: dict[str, ImageRef] = {}
        self._next = 1
        # Attached images just decoded: the first load reuses the pixels instead of decoding again.
        self._fresh: dict[str, Image.Image] = {}
        # Disk syncs queued on one background thread, run in order (see the class docstring).
        self._pending: list[tuple[str, Future[None]]] = []
        self._syncer: ThreadPoolExecutor | None = None
        self._sync_failed = False  # a file could not be synced: commit nothing that names it
        self._lock = threading.Lock()

    # -- listing -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[ImageRef]:
        return iter(self._refs.values())

    def __len__(self) -> int:
        return len(self._refs)

    def __contains__(self, handle: object) -> bool:
        return isinstance(handle, str) and handle.lower() in self._refs

    def get(self, handle: str) -> ImageRef:
        """The image with this exact handle; UnknownImageError when none."""
        ref = self._refs.get(handle.lower())
        if ref is None:
            raise UnknownImageError(self._unknown_message(handle))
        return ref

    def latest(self) -> ImageRef | None:
        """The most recent image, if any."""
        return next(reversed(self._refs.values()), None) if self._refs else None

    def known_list(self, recent: int | None = None) -> str:
        """Human/model readable list of known images; with `recent`, older ones are named only."""
        if not self._refs:
            return "no images yet (the user must attach one)"
        refs = list(self._refs.values())
        if recent is None or len(refs) <= recent:
            return ", ".join(ref.describe() for ref in refs)
        older, newer = refs[:-recent], refs[-recent:]
        # Long sessions: every message would otherwise repeat the whole list to the model.
        return f"earlier {', '.join(r.handle for r in older)}; recent: " + ", ".join(r.describe() for r in newer)

    def _unknown_message(self, name: str) -> str:
        return f"unknown image {_quoted(name)}; known images: {self.known_list()}"

    def ancestors(self, handle: str) -> list[ImageRef]:
        """Every ancestor of an image, nearest first, each once."""
        seen: list[ImageRef] = []
        queue = list(self.get(handle).parents)
        while queue:
            name = queue.pop(0)
            ref = self._refs.get(name.lower())
            if ref is None or ref in seen:
                continue
            seen.append(ref)
            queue.extend(ref.parents)
        return seen

    # -- resolving names the model writes --------------------------------------------------
    def resolve(self, name: str) -> ImageRef:
        """Map a handle, a file name or a path of a known image to its ref.

        Anything else is refused: the model may only name images the session knows.
        """
        text = name.strip().strip("\"'`").strip()
        if not text or "\x00" in text:  # a NUL is in no file name (and makes Path.resolve raise)
            raise UnknownImageError(self._unknown_message(name))
        ref = self._refs.get(text.lower())
        if ref is not None:
            return ref
        # A file name or path: compare against outputs and the user's attached sources.
        candidate = Path(os.path.expanduser(text))
        for ref in self._refs.values():
            if text == ref.path.name or text == ref.path.stem:
                return ref
            if ref.source and text == Path(ref.source).name:
                return ref
        for ref in self._refs.values():
            for known in filter(None, (str(ref.path), ref.source)):
                try:
                    if candidate.resolve() == Path(known).resolve():
                        return ref
                except OSError:
                    continue
        if "/" in text or "\\" in text or candidate.suffix:
            raise UnsafePathError(
                f"{_quoted(text)} is not an image of this session; tools may only read images the user "
                f"attached or tools made. Known images: {self.known_list()}"
            )
        raise UnknownImageError(self._unknown_message(text))

    # -- adding images -------------------------------------------------------------------
    def _new_handle(self) -> str:
        handle = f"img{self._next}"
        self._next += 1
        return handle

    def attach(self, path: str | Path, *, source: str | None = None) -> ImageRef:
        """Add a user's image file: validated, normalised and copied into the session folder.

        `source` replaces the recorded origin when the file is only a carrier (a decoded data: URI).
        """
        file = Path(os.path.expanduser(str(path)))
        image, note = open_image(file, self.max_pixels)
        handle = self._new_handle()
        origin = source if source is not None else str(file.resolve())
        ref = ImageRef(handle=handle, path=self.folder / f"{handle}.png", source=origin, note=note)
        if is_plain_png(file):
            created = not self.folder.exists()
            try:
                self._copy_lossless(file, image, ref)
            except OSError as exc:  # a full disk: one line, and no empty session folder left behind
                if created:
                    with contextlib.suppress(OSError):
                        self.folder.rmdir()
                raise ImageError(f"cannot write {ref.path.name} in {self.folder}: {exc.strerror or exc}") from None
        else:
            self._write(image, ref)
        self._fresh = {ref.handle: image}  # only the newest: a long REPL session must not hoard pixels
        return ref

    def _copy_lossless(self, source: Path, image: Image.Image, ref: ImageRef) -> None:
        """Keep a PNG input's own bytes (decoding them again gives the same pixels: no re-encode).

        Only the `vchat` text chunk is added, so the copy carries its record like any output.
        Synced in the background like every image (see the class docstring).
        """
        ref.width, ref.height = image.size
        ref.mode = image.mode
        if not _is_within(ref.path, self.folder):
            raise UnsafePathError(f"refusing to write {ref.path} outside {self.folder}")
        self.folder.mkdir(parents=True, exist_ok=True)
        record = ref.to_dict()
        record["path"] = ref.path.name
        write_atomic(ref.path, png_with_record(source.read_bytes(), record), durable=False)
        self._sync_later(ref)
        self._refs[ref.handle] = ref

    def _queue(self, label: str, work: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(1, thread_name_prefix="vchat-sync")
            self._pending.append((label, self._syncer.submit(work, *args)))

    def _sync_later(self, ref: ImageRef) -> None:
        self._queue(ref.handle, self._sync_file, ref.path)

    def _sync_file(self, path: Path) -> None:
        try:
            sync_file(path)
        except OSError:
            self._sync_failed = True
            raise

    def commit_later(self, then: Callable[[], None]) -> None:
        """Once every image written so far is on disk, folder entries included, run `then` (a transcript sync).

        Runs on the sync thread, after the file syncs queued before it; errors come out of `flush()`.
        """
        self._queue("the session", self._commit, then)

    def _commit(self, then: Callable[[], None]) -> None:
        sync_folder(self.folder)  # the renames that published the files synced before this task
        if not self._sync_failed:
            then()

    def flush(self) -> None:
        """Wait until every image written so far, and every queued commit, is on disk."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        error: str | None = None
        for label, future in pending:
            try:
                future.result()
            except (OSError, VchatError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                error = error or f"could not sync {label} to disk: {why}"
        if error is None:
            try:
                sync_folder(self.folder)  # the renames since the last commit
            except OSError as exc:
                error = f"could not sync {self.folder} to disk: {exc.strerror or exc}"
        if error is not None:
            raise VchatError(error)

    def save(
        self,
        image: Image.Image,
        *,
        tool: str,
        params: Mapping[str, Any] | None = None,
        parents: tuple[str, ...] = (),
        seed: int | None = None,
    ) -> ImageRef:
        """Write a tool's output as the next handle, atomically, with its lineage in the PNG."""
        handle = self._new_handle()
        ref = ImageRef(
            handle=handle,
            path=self.folder / f"{handle}-{tool}.png",
            parents=tuple(parents),
            tool=tool,
            params=dict(params or {}),
            seed=seed,
        )
        self._write(image, ref)
        return ref

    def _write(self, image: Image.Image, ref: ImageRef) -> None:
        ref.width, ref.height = image.size
        if image.mode not in ("RGB", "RGBA", "L"):
            image = normalise_mode(image)
        ref.mode = image.mode
        if not _is_within(ref.path, self.folder):
            raise UnsafePathError(f"refusing to write {ref.path} outside {self.folder}")
        created = not self.folder.exists()
        try:
            self._write_file(image, ref)
        except OSError as exc:  # a full disk, a read-only folder: one line (a tool's failure goes to the model)
            if created:  # the first image of a new session: leave no empty session folder behind
                with contextlib.suppress(OSError):
                    self.folder.rmdir()
            raise ImageError(f"cannot write {ref.path.name} in {self.folder}: {exc.strerror or exc}") from None
        self._refs[ref.handle] = ref

    def _write_file(self, image: Image.Image, ref: ImageRef) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        record = ref.to_dict()
        record["path"] = ref.path.name
        lineage = self._lineage_of(ref)
        record["lineage"] = [a.handle for a in lineage]
        # Where the pixels came from, also when the attached copies are just the user's bytes.
        sources = {a.handle: a.source for a in lineage if a.source}
        if sources:
            record["sources"] = sources
        # On failure no half-written file is left behind; the handle number is simply skipped.
        # Not synced before the rename: whole for a killed process at once, on disk by `flush()`.
        write_atomic(ref.path, encode_png(image, record, self.png), durable=False)
        self._sync_later(ref)

    def _lineage_of(self, ref: ImageRef) -> list[ImageRef]:
        seen: list[ImageRef] = []
        queue = list(ref.parents)
        while queue:
            found = self._refs.get(queue.pop(0).lower())
            if found is not None and found not in seen:
                seen.append(found)
                queue.extend(found.parents)
        return seen

    def load(self, ref: ImageRef) -> Image.Image:
        """Open a known image for a tool (re-validated: the file may have changed on disk)."""
        if not _is_within(ref.path, self.folder):
            raise UnsafePathError(f"{ref.path} is outside the session folder")
        fresh = self._fresh.pop(ref.handle.lower(), None)
        if fresh is not None:
            return fresh
        image, _ = open_image(ref.path, self.max_pixels)
        return image

    def restore(self, ref: ImageRef) -> None:
        """Re-register an image from a transcript when a session is resumed."""
        self._refs[ref.handle.lower()] = ref
        self.reserve(ref.handle)

    def reserve(self, handle: str) -> None:
        """Never hand out `handle` (or any lower number) again: the high-water mark only rises."""
        match = HANDLE_RE.match(handle)
        if match:
            self._next = max(self._next, int(match.group(1)) + 1)

    def reserve_from_folder(self) -> None:
        """Reserve the numbers of image files already in the folder, so a new output never replaces one."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            match = _FILE_HANDLE_RE.match(path.name)
            if match:
                self.reserve(match.group(1))

    def remove_stale_temporaries(self) -> None:
        """Delete hidden half-written outputs a killed vchat left (call only while holding the session lock)."""
        if not self.folder.is_dir():
            return
        for path in [*self.folder.glob(f".*{TMP_SUFFIX}"), *self.folder.glob(".img*.png.tmp")]:
            with contextlib.suppress(OSError):
                path.unlink()
