"""The sessions index: one line per session in the user data folder, so any folder can list and resume them.

Sessions live where `--out` puts them; the index only remembers where each one is, as llm and
aichat keep theirs in the user data folder. It is a convenience: a session is whole without it,
and a folder that was moved or deleted simply drops out of the listing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from vchat.store.transcript import TRANSCRIPT_NAME, iter_sessions

try:  # POSIX; elsewhere concurrent updates are not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

INDEX_NAME = "sessions.jsonl"
LOCK_SUFFIX = ".lock"
# Rewrite the index without its dead entries once this many have piled up.
_COMPACT_AFTER = 50


def index_path() -> Path:
    """`sessions.jsonl` in the user data folder (platformdirs: ~/.local/share/vchat on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("vchat", appauthor=False)) / INDEX_NAME


def register(session_id: str, folder: Path) -> bool:
    """Remember where a new session lives; False when the index cannot be written (the session still works)."""
    line = json.dumps({"id": session_id, "folder": str(folder.resolve()), "created": round(time.time(), 3)}) + "\n"
    path = index_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Under the lock: an append racing a rewrite would land in the file the rewrite is replacing.
        with _locked(path):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
    except OSError:
        return False
    return True


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Every change of the index (append, removal, compaction) under one exclusive lock across processes.

    The lock is a separate file: the index itself is replaced by a rename when rewritten, and a lock
    on the old file would not hold the new one. A read-modify-write is only whole while no other
    process appends between its read and its rename.
    """
    if fcntl is None:
        yield
        return
    fd = os.open(path.with_name(path.name + LOCK_SUFFIX), os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _read_lines(path: Path) -> list[str]:
    """The index's lines; OSError when it cannot be read or is no regular file (a FIFO there would block)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW)
    with open(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return fh.read().decode("utf-8", "replace").splitlines()


def unregister(session_id: str) -> None:
    """Forget a session that was removed again (nothing came of it); a no-op when the index cannot be read."""
    path = index_path()
    try:
        with _locked(path):
            lines = _read_lines(path)
            kept = [line for line in lines if _entry_id(line) != session_id]
            if len(kept) != len(lines):
                _rewrite(path, kept)
    except OSError:
        return


def _entry_id(line: str) -> str | None:
    try:
        return str(json.loads(line)["id"])
    except (ValueError, KeyError, TypeError):
        return None


def _indexed() -> list[Path]:
    """Folders named in the index that still hold a transcript (the index is compacted when many do not)."""
    path = index_path()
    try:
        lines = _read_lines(path)
    except OSError:
        return []
    alive: dict[str, Path] = {}
    dead = 0
    for line in lines:
        try:
            entry = json.loads(line)
            folder = Path(entry["folder"])
        except (ValueError, KeyError, TypeError):
            dead += 1
            continue
        if (folder / TRANSCRIPT_NAME).is_file():
            alive[str(folder)] = folder
        else:
            dead += 1
    if dead >= _COMPACT_AFTER:
        with contextlib.suppress(OSError), _locked(path):
            # Read again under the lock: entries added since the first read are kept (those not yet
            # checked stay whatever their state, to be judged next time).
            seen = set(lines)
            _rewrite(path, [line for line in _read_lines(path) if _keeps(line, alive) or line not in seen])
    return list(alive.values())


def _keeps(line: str, alive: dict[str, Path]) -> bool:
    try:
        return str(json.loads(line)["folder"]) in alive
    except (ValueError, KeyError, TypeError):
        return False


def _rewrite(path: Path, lines: Iterable[str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def all_sessions(out_dir: Path) -> list[Path]:
    """Every known session folder, newest first: those under `out_dir` and those in the index."""
    found: dict[Path, Path] = {}
    for folder in [*iter_sessions(out_dir), *_indexed()]:
        found.setdefault(folder.resolve(), folder)

    def last_used(folder: Path) -> float:
        try:
            return (folder / TRANSCRIPT_NAME).stat().st_mtime
        except OSError:
            return 0.0

    return sorted(found.values(), key=last_used, reverse=True)
