"""`manifest.jsonl`: one line per finished input, appended as the batch goes; read back by --resume."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vchat.batch.inputs import MANIFEST_NAME
from vchat.batch.manifest_file import ManifestError, escaped_json, open_for_append, open_for_reading, write_line
from vchat.store.files import is_whole_png
from vchat.userfiles import shown

__all__ = ["MANIFEST_NAME", "Manifest", "ManifestError", "Result", "is_done", "read_manifest"]


@dataclass
class Result:
    """What happened to one input: written as one manifest line."""

    input: str
    status: str  # done | failed
    outputs: list[str] = field(default_factory=list)  # paths relative to the output folder
    error: str | None = None
    seconds: float = 0.0
    seed: int | None = None
    text: str | None = None  # the tool's observation, or the model's answer in agent mode
    session: str | None = None  # agent mode: the image's own session folder
    worker: str | None = None  # --ray: which actor did it
    blobs: dict[str, bytes] | None = None  # --ray without shared storage: PNG bytes the driver writes

    def line(self) -> bytes:
        """The record as one JSON line: file names kept losslessly (undecodable bytes as escaped surrogates)."""
        return (escaped_json(json.dumps(self.record(), ensure_ascii=False, default=str)) + "\n").encode("utf-8")

    def record(self) -> dict[str, Any]:
        """The manifest line (bytes are never written there)."""
        data: dict[str, Any] = {
            "input": self.input,
            "status": self.status,
            "outputs": list(self.outputs),
            "error": self.error,
            "seconds": round(self.seconds, 4),
            "seed": self.seed,
        }
        # Optional fields only when set (a shallow build: asdict's deep copy cost more than the line).
        for key in ("text", "session", "worker"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


STATUSES = ("done", "failed")
SIZE_LIMIT = 1 << 30  # a million records is a few hundred MB
LINE_LIMIT = 1 << 20  # a record is a few hundred bytes, a long answer text some KB
_OPTIONAL_TEXT = ("error", "text", "session", "worker")


def record_problem(record: Any) -> str | None:
    """Why a manifest line cannot be used (None when it can): every field a reader relies on, by type."""
    if not isinstance(record, dict):
        return "not an object"
    if not isinstance(record.get("input"), str) or not record["input"]:
        return "no input"
    if record.get("status") not in STATUSES:
        return "bad status"
    outputs = record.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(o, str) and safe_relative(o) for o in outputs):
        return "bad outputs"
    if not all(isinstance(record.get(key), str | None) for key in _OPTIONAL_TEXT):
        return "bad text field"
    seconds, seed = record.get("seconds", 0), record.get("seed")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "bad seconds"
    if isinstance(seed, bool) or not isinstance(seed, int | None):
        return "bad seed"
    return None


def safe_relative(name: str) -> bool:
    """True for a path that stays inside the output folder: relative, no `..`, no empty or hidden part."""
    if not name or "\x00" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and all(
        part not in ("", ".", "..") and not part.startswith(".") for part in path.parts
    )


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """The last valid record of each input; torn, corrupt or malformed lines are skipped (their inputs redone).

    Anything but a plain file in the manifest's place (a symlink, FIFO, folder) is a one-line ManifestError.
    """
    latest: dict[str, dict[str, Any]] = {}
    fd = open_for_reading(path)
    if fd is None:
        return latest
    with open(fd, "rb") as fh:
        size = os.fstat(fd).st_size
        if size > SIZE_LIMIT:
            raise ManifestError(f"{shown(path)} is {size:,} bytes, too big for a manifest; choose another --out")
        for raw in _lines(fh):
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if record_problem(record) is None:
                latest[record["input"]] = record
    return latest


def _lines(fh: Any) -> Iterator[bytes]:
    """The file's lines; one longer than LINE_LIMIT (no record is) is skipped whole, never held in memory."""
    while raw := fh.readline(LINE_LIMIT):
        if len(raw) == LINE_LIMIT and not raw.endswith(b"\n"):
            while (rest := fh.readline(LINE_LIMIT)) and not rest.endswith(b"\n"):
                pass
            continue
        yield raw


def is_done(record: dict[str, Any], out: Path) -> bool:
    """A record counts as done only while all its outputs are on disk, whole, and inside the output folder.

    Outputs are not synced one by one (that would put a disk flush on every image): a
    power loss may leave a recorded output empty or cut, and this check then has it redone.
    A record naming a path outside the folder (edited, or planted) never counts.
    """
    outputs = record.get("outputs")
    if record.get("status") != "done" or not isinstance(outputs, list) or not outputs:
        return False
    root = out.resolve()
    return all(isinstance(name, str) and safe_relative(name) and _whole(out / name, root) for name in outputs)


def _whole(path: Path, root: Path) -> bool:
    try:
        if not path.resolve().is_relative_to(root) or not stat.S_ISREG(os.lstat(path).st_mode):
            return False
    except (OSError, RuntimeError):
        return False
    if path.suffix.lower() != ".png":
        return path.stat().st_size > 0
    return is_whole_png(path)


class Manifest:
    """Appends records; each line goes to the OS in one write (survives SIGKILL) and is synced now and then.

    Any failure (a full disk, a file planted in its place) is a one-line ManifestError; after a
    failed write the next record starts on a new line, so a torn record never swallows the next.
    """

    SYNC_EVERY = 2.0  # seconds between fsyncs: power loss costs at most this much of the record

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._torn = False
        self._synced = time.monotonic()

    def write(self, result: Result) -> None:
        """Append one result."""
        if self._fd is None:
            self._fd, self._torn = open_for_append(self.path)
        line = result.line()
        if self._torn:
            line = b"\n" + line
        try:
            write_line(self._fd, line)
        except OSError as exc:
            self._torn = True
            raise ManifestError(f"cannot write {shown(self.path)}: {exc.strerror or exc}") from None
        self._torn = False
        if time.monotonic() - self._synced > self.SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        """Force the records to disk."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise ManifestError(f"cannot write {shown(self.path)}: {exc.strerror or exc}") from None
            self._synced = time.monotonic()

    def close(self) -> None:
        """Sync and close; a failed sync is raised once the file is closed."""
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None
