"""Reopen a session from its folder: the transcript replayed into turns, handles and lineage, then one Session."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vchat.chat.history import Turn
from vchat.config import Settings
from vchat.errors import VchatError
from vchat.llm.base import LLM
from vchat.session import Reopened, Session
from vchat.store.files import is_whole_png
from vchat.store.images import ImageRef, ImageStore
from vchat.store.transcript import TRANSCRIPT_NAME, SessionLock, read_records
from vchat.tools.base import Tool


def resume_session(
    settings: Settings,
    tools: Sequence[Tool],
    llm: LLM | None,
    session: str | None = None,
    *,
    mark: bool = True,
) -> tuple[Session, str | None]:
    """Reopen a session (default: the latest) with its history, handles and lineage back.

    `mark=False` only reads it (`vchat images`): no lock, no "resumed" line, nothing tidied.
    Returns the session and a warning naming damaged transcript lines and images gone from disk.
    """
    folder = find_session(settings.out_dir, session).resolve()
    lock = SessionLock(folder)
    if mark:  # a session that will be written to is this process's alone until close()
        lock.acquire()
    try:
        records, warning = read_records(folder / TRANSCRIPT_NAME)
        store = ImageStore(folder, settings.max_image_pixels, settings.png_compression)
        turns, missing = replay(records, store)
        # Image files the transcript lost (a crash between the file and its line) still hold their numbers.
        store.reserve_from_folder()
        reopened = Session(settings, tools, llm, reopened=Reopened(folder=folder, store=store, lock=lock, turns=turns))
    except BaseException:
        lock.release()
        raise
    if missing:
        shown = f"{', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}"
        note = f"{shown} missing from {folder} (deleted, or cut short by a power loss)"
        warning = f"{warning}; {note}" if warning else note
    if mark:  # listing a session (vchat images) must not change it
        store.remove_stale_temporaries()
        reopened.transcript.write("resumed")
    return reopened, warning


def replay(records: Sequence[dict[str, Any]], store: ImageStore) -> tuple[list[Turn], list[str]]:
    """Restore the store's images from transcript records; return the turns and the handles whose files are gone."""
    turns: list[Turn] = []
    missing: list[str] = []
    pending: Turn | None = None

    def close(turn: Turn, ending: str, text: str | None = None) -> None:
        turn.close(ending, text)
        turns.append(turn)

    for record in records:
        kind = record.get("type")
        if kind == "image":
            ref = ImageRef.from_dict(record["image"])  # validated by read_records
            store.reserve(ref.handle)  # a handle once given is never given again, file or not
            if _whole_image(ref.path):
                store.restore(ref)
                if ref.handle in missing:
                    missing.remove(ref.handle)
            elif ref.handle not in missing:
                # Deleted, or (power loss before its sync) cut short: either way not an image to offer.
                missing.append(ref.handle)
        elif kind == "user":
            if pending is not None:  # the process died during that turn
                close(pending, "interrupted")
            sent = str(record.get("sent") or record.get("text") or "")
            pending = Turn(text=sent, content=str(record.get("content") or sent))
        elif kind in ("undo", "clear"):
            # What the user removed stays removed: the live session dropped these turns the same way.
            if pending is not None:
                close(pending, "interrupted")
                pending = None
            del turns[len(turns) - (min(1, len(turns)) if kind == "undo" else len(turns)) :]
        elif kind in ("cancelled", "tool") and pending is not None:
            # A direct tool run (`/tool`) starts after the turn ended; its steps are not the model's.
            close(pending, "interrupted")
            pending = None
        elif kind == "step" and pending is not None:
            if isinstance(record.get("record"), str) and record["record"]:
                pending.records.append(record["record"])
            if record.get("kind") in ("final", "error"):
                close(pending, str(record["kind"]), str(record.get("text", "")))
                pending = None
    if pending is not None:
        close(pending, "interrupted")
    return turns, missing


def _whole_image(path: Path) -> bool:
    """An image file a resumed session may offer: present, and for PNGs complete from signature to end."""
    return is_whole_png(path) if path.suffix.lower() == ".png" else path.is_file()


def find_session(out_dir: Path, name: str | None) -> Path:
    """The folder of a session by id (or unique prefix), or the latest when name is None.

    Sessions under `out_dir` and those in the sessions index (any folder) are all candidates.
    """
    from vchat.store.index import all_sessions

    sessions = all_sessions(out_dir)
    if not sessions:
        raise VchatError(f"no sessions yet (none in {out_dir} or the sessions index); start one with `vchat`")
    if name is None:
        return sessions[0]
    candidate = Path(name).expanduser()
    if (candidate / TRANSCRIPT_NAME).is_file():
        return candidate
    matches = [p for p in sessions if p.name.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise VchatError(f"no session {name!r}; run `vchat sessions` to list them")
    raise VchatError(f"{name!r} matches {len(matches)} sessions; give more of the id")
