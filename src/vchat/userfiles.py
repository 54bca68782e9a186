"""Files the user names (config, LLM scripts, model files): regular files only, read with a size cap, one-line errors.

Bottom layer, like config and errors: it imports no other vchat module but errors, so that
config can read its file through it.
"""

from __future__ import annotations

import errno
import os
import stat

from vchat.errors import VchatError

# Text files the user writes by hand (a config file, a scripted LLM's replies) are far below this.
TEXT_LIMIT = 16 * 1024 * 1024


class UserFileError(VchatError):
    """A file the user named cannot be used: missing, not a regular file, too big, unreadable or not text."""


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def shown(path: str | os.PathLike[str]) -> str:
    """The path as a printable one-liner: undecodable bytes and control characters escaped."""
    text = os.fspath(path)
    return "".join(
        ch if ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF else ascii(ch)[1:-1].replace("\\udc", "\\x")
        for ch in text
    )


def check_regular(path: str | os.PathLike[str], what: str) -> os.stat_result:
    """The file's stat when it is a regular file (after symlinks); else a one-line UserFileError."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UserFileError(f"{what} {shown(path)} does not exist") from None
    except OSError as exc:
        raise UserFileError(f"{what} {shown(path)}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserFileError(f"{what} {shown(path)}: cannot read it, it is {kind_of(info.st_mode)}; give a regular file")
    return info


def read_bytes(path: str | os.PathLike[str], what: str, limit: int = TEXT_LIMIT) -> bytes:
    """The file's bytes: a regular file of at most `limit` bytes, read without following it into a pipe or device.

    The descriptor is opened non-blocking and checked with fstat, so a file swapped for a FIFO
    between the check and the open cannot hang the read, and reading stops one byte past the cap
    whatever the size the file claims.
    """
    check_regular(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UserFileError(f"{what} {shown(path)}: cannot read it ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserFileError(
                f"{what} {shown(path)}: cannot read it, it is {kind_of(info.st_mode)}; give a regular file"
            )
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            try:
                chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise UserFileError(f"{what} {shown(path)}: cannot read it ({exc.strerror or exc})") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise UserFileError(f"{what} {shown(path)} is over {limit // (1024 * 1024)} MiB; is it the right file?")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], what: str, limit: int = TEXT_LIMIT) -> str:
    """The file as UTF-8 text (see read_bytes); invalid UTF-8 is a one-line error naming the byte offset."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserFileError(
            f"{what} {shown(path)}: cannot read it as text (not UTF-8 at byte {exc.start}); save it as UTF-8"
        ) from None
