"""`manifest.jsonl`: one line per finished input, appended as the batch goes; read back by --resume."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vchat.store.files import is_whole_png

MANIFEST_NAME = "manifest.jsonl"


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


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """The last record of each input; lines torn by a crash are skipped."""
    latest: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return latest
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("input"), str):
                latest[record["input"]] = record
    return latest


def is_done(record: dict[str, Any], out: Path) -> bool:
    """A record counts as done only while all its outputs are on disk and whole.

    Outputs are not synced one by one (that would put a disk flush on every image): a
    power loss may leave a recorded output empty or cut, and this check then has it redone.
    """
    outputs = record.get("outputs") or []
    return record.get("status") == "done" and all(_whole(out / name) for name in outputs)


def _whole(path: Path) -> bool:
    if path.suffix.lower() != ".png":
        return path.is_file() and path.stat().st_size > 0
    return is_whole_png(path)


class Manifest:
    """Appends records; each line goes to the OS in one write (survives SIGKILL) and is synced now and then."""

    SYNC_EVERY = 2.0  # seconds between fsyncs: power loss costs at most this much of the record

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._synced = time.monotonic()

    def write(self, result: Result) -> None:
        """Append one result."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        line = (json.dumps(result.record(), ensure_ascii=False, default=str) + "\n").encode("utf-8")
        view = memoryview(line)
        while view:  # a short write (a signal, a nearly full disk): finish the line
            view = view[os.write(self._fd, view) :]
        if time.monotonic() - self._synced > self.SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        """Force the records to disk."""
        if self._fd is not None:
            os.fsync(self._fd)
            self._synced = time.monotonic()

    def close(self) -> None:
        """Sync and close."""
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None
