"""Append-only JSONL transcript of a session (one record per event, written as it happens), its lock, its reader."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from vchat.errors import VchatError

try:  # POSIX; elsewhere a session is simply not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

TRANSCRIPT_NAME = "session.jsonl"
LOCK_NAME = ".lock"
HANDLE_PATTERN = re.compile(r"^img\d+$", re.IGNORECASE)
# A lone UTF-16 surrogate (a model's broken emoji) cannot be written as UTF-8: it is kept as a JSON escape.
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_line(record: Mapping[str, Any]) -> str:
    """One record as a JSON line: readable UTF-8, lone surrogates escaped so the write can never fail."""
    text = json.dumps(record, default=str, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text) + "\n"


class TranscriptError(VchatError):
    """The transcript cannot be written or read safely (disk full, a symlink in its place)."""


def _open_flags() -> int:
    # O_NOFOLLOW: a session.jsonl replaced by a symlink must not lead model text into a file outside the folder.
    return os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_regular(path: Path) -> int:
    """Open for appending; non-blocking until fstat shows a regular file (a planted FIFO would block the open)."""
    fd = os.open(path, _open_flags() | getattr(os, "O_NONBLOCK", 0), 0o600)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a plain file (a pipe, device or folder)")
    os.set_blocking(fd, True)
    return fd


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class Transcript:
    """Writes `session.jsonl`; one unbuffered write per record, so a crash loses at most a torn last line.

    Files are private to the user (0600, like the images); nothing is held in a buffer, so a
    full disk fails the write that hit it and never again at close.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._torn = False  # the last write failed part way: start the next record on a new line

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._fd = _open_regular(self.path)
            except OSError as exc:
                if exc.errno == errno.ELOOP or self.path.is_symlink():
                    raise TranscriptError(
                        f"refusing to write {self.path}: it is a symbolic link (a transcript must be a plain file "
                        "in its session folder)"
                    ) from None
                if exc.errno in (errno.ENXIO, errno.EINVAL, errno.EISDIR):  # a FIFO with no reader, a device, a folder
                    raise TranscriptError(
                        f"refusing to write {self.path}: it is not a plain file (a pipe, device or folder)"
                    ) from None
                raise TranscriptError(f"cannot write {self.path}: {_why(exc)}") from None
        return self._fd

    def write(self, record_type: str, /, **data: Any) -> None:
        """Append one record `{"type": record_type, "time": ..., **data}`; it reaches the OS at once."""
        fd = self._open()
        record = {"type": record_type, "time": round(time.time(), 3), **data}
        line = json_line(record).encode("utf-8")
        if self._torn:
            line = b"\n" + line
        try:
            written = os.write(fd, line)
            while written < len(line):  # a short write (signal, nearly full disk): finish the line or fail
                more = os.write(fd, line[written:])
                if more <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += more
        except OSError as exc:
            self._torn = True
            raise TranscriptError(f"cannot write {self.path}: {_why(exc)}") from None
        self._torn = False

    def sync(self) -> None:
        """Force records to disk (end of a turn), for power loss rather than process death."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise TranscriptError(f"cannot write {self.path}: {_why(exc)}") from None

    def close(self) -> None:
        """Close the file (never raises: nothing is buffered); later writes reopen it."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class SessionLock:
    """An exclusive lock on a session folder while one vchat has it open (fcntl.flock on `.lock`).

    A second vchat that resumes the same session is refused in one line instead of both
    handing out the same next handle. The lock goes with the process, so a crash never leaves
    a session locked.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise TranscriptError naming the holder."""
        if self._fd is not None or fcntl is None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            raise TranscriptError(f"cannot lock session {self.path.parent.name}: {_why(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise TranscriptError(
                f"session {self.path.parent.name} is open in another vchat{who}; "
                "close that one first, or start a new session"
            ) from None
        if not _same_file(fd, self.path):
            # The holder released (and removed) the file between our open and our flock: take a fresh one.
            os.close(fd)
            self.acquire()
            return
        with contextlib.suppress(OSError):  # the pid is only for the message; the lock holds without it
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Let another vchat open the session; a clean exit leaves no `.lock` behind."""
        if self._fd is not None:
            # Removed while still held, so nobody can take a lock on a file that is about to disappear.
            with contextlib.suppress(OSError):
                self.path.unlink()
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        held, named = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def _is_str(value: Any, optional: bool = False) -> bool:
    return isinstance(value, str) or (optional and value is None)


def _image_ok(image: Any) -> bool:
    if not isinstance(image, Mapping) or not _is_str(image.get("handle")) or not _is_str(image.get("path")):
        return False
    if not HANDLE_PATTERN.match(image["handle"]) or "\x00" in image["path"]:
        return False
    parents = image.get("parents") or []
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        return False
    for key in ("width", "height"):
        if not isinstance(image.get(key) or 0, int):
            return False
    if not isinstance(image.get("params") or {}, Mapping) or not isinstance(image.get("seed"), int | None):
        return False
    return all(_is_str(image.get(key), optional=True) for key in ("tool", "source", "mode", "note", "caption"))


def record_problem(record: Mapping[str, Any]) -> str | None:
    """Why a record cannot be used (None when it can): the fields readers rely on, by type.

    Unknown record types pass (a newer vchat may write more); known ones must have their fields
    with the right types, so that a reader never fails with a KeyError or TypeError on them.
    """
    kind = record.get("type")
    if not isinstance(kind, str):
        return "no type"
    if kind == "image":
        return None if _image_ok(record.get("image")) else "bad image record"
    if kind == "user":
        ok = _is_str(record.get("text")) and _is_str(record.get("sent"), optional=True)
        return None if ok else "bad user record"
    if kind == "step":
        ok = _is_str(record.get("kind")) and all(
            _is_str(record.get(key), optional=True) for key in ("text", "tool", "input", "observation")
        )
        images = record.get("images") or []
        ok = ok and isinstance(images, list) and all(isinstance(h, str) for h in images)
        return None if ok else "bad step record"
    return None


def read_records(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """All intact, valid records, and a warning when a torn, corrupt or malformed line had to be skipped."""
    records: list[dict[str, Any]] = []
    problems: list[int] = []
    if path.is_symlink():
        raise TranscriptError(
            f"refusing to read {path}: it is a symbolic link (a transcript must be a plain file in its session folder)"
        )
    try:
        # Non-blocking and checked: a FIFO or device planted in its place is refused instead of hanging the read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise TranscriptError(f"cannot read {path}: {_why(exc)}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TranscriptError(f"refusing to read {path}: it is not a plain file (a pipe, device or folder)")
    fh = open(fd, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    with fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                problems.append(number)
                continue
            if isinstance(record, Mapping) and record_problem(record) is None:
                records.append(dict(record))
            else:
                problems.append(number)
    warning = None
    if problems:
        lines = ", ".join(str(n) for n in problems[:5])
        warning = f"{path}: skipped {len(problems)} unreadable line(s) ({lines}), cut by a crash or damaged"
    return records, warning


def iter_sessions(out_dir: Path) -> Iterator[Path]:
    """Session folders under the output folder that hold a transcript, newest first."""
    if not out_dir.is_dir():
        return iter(())
    found = [p.parent for p in out_dir.glob(f"*/{TRANSCRIPT_NAME}")]
    found.sort(key=lambda p: (p / TRANSCRIPT_NAME).stat().st_mtime, reverse=True)
    return iter(found)
