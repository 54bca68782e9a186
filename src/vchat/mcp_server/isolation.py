"""Which session folder a path belongs to: one client never reads another's images, this run's or an earlier run's.

The server remembers the folders it made while it runs; after a restart that memory is gone,
but the folders are still there (the output folder keeps every session), so a folder under the
output folder is also known as a session by what it holds: a transcript or a session lock.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vchat.store.transcript import LOCK_NAME, TRANSCRIPT_NAME


def session_folder_of(real: Path, out_dir: Path) -> Path | None:
    """The session folder under `out_dir` that holds `real` (a resolved path), if any."""
    try:
        parts = real.relative_to(out_dir).parts
    except ValueError:
        return None
    if len(parts) < 2:
        return None
    folder = out_dir / parts[0]
    if (folder / TRANSCRIPT_NAME).exists() or (folder / LOCK_NAME).exists():
        return folder
    return None


def foreign_session(real: Path, own: Path, known: Callable[[], set[Path]] | None) -> bool:
    """True when `real` lies in a session folder other than `own`: one this server made, or any earlier one."""
    own = own.resolve()
    if real.is_relative_to(own):
        return False
    if known is not None and (real.parent in known() or any(real.is_relative_to(f) for f in known())):
        return True
    return session_folder_of(real, own.parent.resolve()) is not None
