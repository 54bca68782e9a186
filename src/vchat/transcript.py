"""Append-only JSONL transcript of a session: one record per event, flushed as it happens."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

TRANSCRIPT_NAME = "session.jsonl"


class Transcript:
    """Writes `session.jsonl`; every record is flushed so a crash loses at most a torn last line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def write(self, record_type: str, /, **data: Any) -> None:
        """Append one record `{"type": record_type, "time": ..., **data}` and flush it to the OS."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the session
        record = {"type": record_type, "time": round(time.time(), 3), **data}
        self._fh.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        # flush() hands the line to the OS: it survives a SIGKILL of this process.
        self._fh.flush()

    def sync(self) -> None:
        """Force records to disk (end of a turn), for power loss rather than process death."""
        if self._fh is not None:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file; later writes reopen it."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_records(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """All intact records, and a warning when a torn or corrupt line had to be skipped."""
    records: list[dict[str, Any]] = []
    problems: list[int] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                problems.append(number)
                continue
            if isinstance(record, Mapping):
                records.append(dict(record))
            else:
                problems.append(number)
    warning = None
    if problems:
        lines = ", ".join(str(n) for n in problems[:5])
        warning = f"{path}: skipped {len(problems)} unreadable line(s) ({lines}), likely cut by a crash"
    return records, warning


def iter_sessions(out_dir: Path) -> Iterator[Path]:
    """Session folders under the output folder that hold a transcript, newest first."""
    if not out_dir.is_dir():
        return iter(())
    found = [p.parent for p in out_dir.glob(f"*/{TRANSCRIPT_NAME}")]
    found.sort(key=lambda p: (p / TRANSCRIPT_NAME).stat().st_mtime, reverse=True)
    return iter(found)
