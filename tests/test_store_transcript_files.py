"""Files a session keeps, replaced by a FIFO or a folder: refused or treated as missing, never waited on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from pathlib import Path
from vchat.store.transcript import Transcript, TranscriptError, read_records

path = Path(sys.argv[1])
for attempt in (lambda: read_records(path), lambda: Transcript(path).write("user", text="hi")):
    try:
        attempt()
    except TranscriptError as exc:
        print(exc)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}


def test_fifo_transcript_is_refused_for_reading_and_writing(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    os.mkfifo(path)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=60, env=_env(tmp_path)
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all(str(path) in line for line in lines), done.stdout + done.stderr
    assert "not a plain file" in lines[0] and "not a plain file" in lines[1]


def test_sessions_listing_shows_a_fifo_transcript_as_one_row(tmp_path: Path) -> None:
    folder = tmp_path / "vchat-out" / "20260101-000000-abcd"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "session.jsonl")
    done = subprocess.run(
        [sys.executable, "-m", "vchat", "sessions"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "20260101-000000-abcd" in done.stdout and "unreadable" in done.stdout


PNG_PROBE = """
import sys
from pathlib import Path
from vchat.store.files import is_plain_png, is_whole_png

path = Path(sys.argv[1])
print(is_whole_png(path), is_plain_png(path))
"""


def test_a_fifo_in_place_of_a_session_image_is_not_whole(tmp_path: Path) -> None:
    # What resume checks for every image of the session: a planted FIFO must read as missing, not block.
    path = tmp_path / "img2-flip_image.png"
    os.mkfifo(path)
    done = subprocess.run(
        [sys.executable, "-c", PNG_PROBE, str(path)], capture_output=True, text=True, timeout=60, env=_env(tmp_path)
    )
    assert done.stdout.split() == ["False", "False"], done.stderr
