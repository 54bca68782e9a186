"""The manifest's file policy: a plain file in the output folder (no link, pipe or device), one lock per folder.

The same rules the session transcript keeps: opened with O_NOFOLLOW and checked with fstat, so
a planted symlink or FIFO is refused in one line instead of being written through or hanging;
one batch at a time per output folder (fcntl.flock on `.batch.lock`), so two runs never redo
and double-record the same images; a last line torn by a kill is ended before the next record.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from pathlib import Path

from vchat.errors import VchatError
from vchat.userfiles import kind_of, shown

try:  # POSIX; elsewhere two batches on one folder are simply not kept apart
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".batch.lock"
# Kept legal in JSON, but escaped: lone surrogates (undecodable bytes of a file name, which UTF-8 cannot
# carry), C1 controls, bidi overrides and line separators, so `cat manifest.jsonl` shows them inert and a
# reader gets back exactly the string that was written.
_ESCAPE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")


class ManifestError(VchatError):
    """The manifest cannot be opened, locked, read or written safely."""


def escaped_json(text: str) -> str:
    """A `json.dumps(..., ensure_ascii=False)` result with the characters above written as `\\uXXXX`."""
    return _ESCAPE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def _refuse(path: Path, mode: int) -> ManifestError:
    return ManifestError(
        f"{shown(path)} is {kind_of(mode) if not stat.S_ISLNK(mode) else 'a symbolic link'}, not a plain file; "
        "remove it or choose another --out"
    )


def _nofollow() -> int:
    return getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


def open_for_reading(path: Path) -> int | None:
    """A descriptor on the manifest, or None when there is none yet; anything but a plain file is refused."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ManifestError(f"cannot read {shown(path)}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, info.st_mode)
    try:
        fd = os.open(path, os.O_RDONLY | _nofollow())
    except OSError as exc:
        raise ManifestError(f"cannot read {shown(path)}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # swapped between the lstat and the open
        os.close(fd)
        raise _refuse(path, mode)
    return fd


def open_for_append(path: Path) -> tuple[int, bool]:
    """A descriptor to append records to, and whether the file ends in a torn line that must be ended first."""
    try:
        # Read and write: the last byte is read back to find a torn line.
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _nofollow(), 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR) or os.path.lexists(path):
            with contextlib.suppress(OSError):
                raise _refuse(path, os.lstat(path).st_mode) from None
        raise ManifestError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _refuse(path, info.st_mode)
    # Blocking from here on: a regular file never blocks, and a short write must not turn into EAGAIN.
    os.set_blocking(fd, True)
    torn = False
    if info.st_size > 0:
        with contextlib.suppress(OSError):
            torn = os.pread(fd, 1, info.st_size - 1) != b"\n"
    return fd, torn


def write_line(fd: int, line: bytes) -> None:
    """One record in one write; a short write (a signal, a nearly full disk) is finished or fails with OSError."""
    written = os.write(fd, line)
    while written < len(line):
        more = os.write(fd, line[written:])
        if more <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written += more


class FolderLock:
    """An exclusive lock on an output folder for one batch (fcntl.flock on `.batch.lock`); it goes with the process."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ManifestError naming the other batch."""
        if self._fd is not None or fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _nofollow(), 0o644)
        except OSError as exc:
            raise ManifestError(f"cannot lock {shown(self.path.parent)}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            mode = os.fstat(fd).st_mode
            os.close(fd)
            raise _refuse(self.path, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                # A file system without locks (some network mounts): the batch runs unlocked, as on Windows.
                os.close(fd)
                return
            holder = b""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 32, 0)
            os.close(fd)
            pid = holder.decode("ascii", "replace").strip()
            who = f" (pid {pid})" if pid.isdigit() else ""
            raise ManifestError(
                f"another vchat batch is writing to {shown(self.path.parent)}{who}; "
                "wait for it to finish, then --resume, or choose another --out"
            ) from None
        with contextlib.suppress(OSError):  # the pid is only for the message
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let another batch use the folder."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
