"""Where a batch output may go: a plain path under the output folder, through real folders only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vchat.batch.manifest import safe_relative
from vchat.errors import UnsafePathError
from vchat.userfiles import shown


def confined(out: Path, relative: str) -> Path:
    """`out / relative`, its folders made; refused when a part is `..`, hidden, or a link or file planted in the way.

    A folder inside the output folder replaced by a symlink would otherwise carry the write to
    wherever it points; the batch holds the folder's lock, so only someone else's hand can plant one.
    """
    if not safe_relative(relative):
        raise UnsafePathError(f"{shown(relative)} is not a plain path inside the output folder")
    folder = out
    for part in Path(relative).parts[:-1]:
        folder = folder / part
        try:
            os.mkdir(folder)
            continue
        except FileExistsError:  # made earlier, or by another writer thread just now: check what it is
            pass
        except OSError as exc:
            raise UnsafePathError(f"cannot make {shown(folder)}: {exc.strerror or exc}") from None
        try:
            mode = os.lstat(folder).st_mode
        except OSError as exc:
            raise UnsafePathError(f"cannot use {shown(folder)}: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(mode):
            raise UnsafePathError(
                f"{shown(folder)} is a link or a file, not a folder; remove it or choose another --out"
            )
    target = out / relative
    # The file itself is published by a rename, which replaces a link in its place rather than following it;
    # only a folder there would stop it.
    if target.is_dir() and not target.is_symlink():
        raise UnsafePathError(f"{shown(target)} is a folder; remove it or choose another --out")
    return target
