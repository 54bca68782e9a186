"""A session survives a full disk, a broken transcript, a second opener and a symlink."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import act, answer, make_session, write_photo
from tests.test_cli import vchat

from vchat.config import Settings
from vchat.errors import VchatError
from vchat.resume import resume_session
from vchat.store.transcript import TRANSCRIPT_NAME, read_records
from vchat.tools.registry import all_tools


def _full_disk() -> None:
    """In the child: every write to a regular file fails with EFBIG, like a disk with no room left."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def vchat_on_full_disk(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(VCHAT_OUT=str(tmp_path / "out"), COLUMNS="200", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(XDG_DATA_HOME=str(tmp_path / "xdg-data"), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"))
    return subprocess.run(
        [sys.executable, "-m", "vchat", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
        input=stdin,
        preexec_fn=_full_disk,
    )


def sessions_left(tmp_path: Path) -> list[Path]:
    out = tmp_path / "out"
    return sorted(p for p in out.iterdir()) if out.is_dir() else []


# -- defect 5: a full disk at the start --------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_tool_run_on_a_full_disk_is_one_line_and_leaves_no_session(tmp_path: Path, as_json: bool) -> None:
    photo = write_photo(tmp_path)
    out = vchat_on_full_disk(tmp_path, "run", "--tool", "grayscale_image", "-i", str(photo), *(["--json"] * as_json))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:") and "File too large" in errors[0], out.stderr
    assert sessions_left(tmp_path) == []
    if as_json:
        assert json.loads(out.stdout)["error"]


def test_chat_run_on_a_full_disk_is_one_line_and_leaves_no_session(tmp_path: Path) -> None:
    script = tmp_path / "replies.txt"
    script.write_text(answer("hi"))
    out = vchat_on_full_disk(tmp_path, "run", "hello", "--llm", f"scripted:{script}", "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert json.loads(out.stdout)["error"].startswith("cannot write")
    assert sessions_left(tmp_path) == []


def test_repl_on_a_full_disk_says_so_in_one_line_and_closes_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "replies.txt"
    script.write_text(answer("hi"))
    out = vchat_on_full_disk(tmp_path, "--llm", f"scripted:{script}", stdin="hello\n")
    assert out.returncode == 0 and "Traceback" not in out.stderr + out.stdout, out.stderr
    errors = [line for line in out.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "File too large" in errors[0], out.stdout
    assert sessions_left(tmp_path) == []
    assert not (tmp_path / "xdg-data" / "vchat" / "sessions.jsonl").exists()  # nothing for --resume to pick
    assert "continue" not in out.stdout  # and no exit line naming a session that is not there


def test_transcript_write_failing_mid_turn_is_one_line_and_the_repl_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = make_session(tmp_path, [answer("first"), answer("second")])
    assert list(session.turn("one"))[-1].text == "first"
    import vchat.store.transcript as transcript_module

    def no_space(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(transcript_module.os, "write", no_space)
    with pytest.raises(VchatError, match="No space left on device"):
        list(session.turn("two"))
    session.close()  # never raises: nothing buffered is left to flush
    monkeypatch.undo()
    records, warning = read_records(session.transcript.path)
    assert warning is None and records[-1]["text"] == "first"


# -- defect 6: a schema-broken record ----------------------------------------------------------------


def _session_with_images(tmp_path: Path, count: int = 2) -> Path:
    session = make_session(tmp_path, [act("grayscale_image", "img1"), answer("done")] * count)
    session.attach(write_photo(tmp_path))
    for _ in range(count - 1):
        list(session.turn("grey"))
    session.close()
    return session.transcript.path


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "image", "image": {}},
        {"type": "image", "image": {"handle": 3, "path": None}},
        {"type": "image", "image": {"handle": "img9", "path": "x.png", "width": "wide"}},
        {"type": "image", "image": "img1.png"},
        {"type": "user", "text": {"nested": True}},
        {"type": "step", "kind": "final", "text": ["list"]},
    ],
)
@pytest.mark.slow
def test_schema_broken_records_are_skipped_and_reported(tmp_path: Path, broken: dict[str, object]) -> None:
    path = _session_with_images(tmp_path)
    with open(path, "a") as fh:
        fh.write(json.dumps(broken) + "\n")
    out = vchat(tmp_path, "images")
    assert out.returncode == 0, out.stderr
    assert "img2" in out.stdout and "warning:" in out.stderr and "skipped 1" in out.stderr
    out = vchat(tmp_path, "run", "--resume", "--tool", "grayscale_image", "-a", "image=img2")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr


# -- defect 8: handles -----------------------------------------------------------------------------


def test_a_second_opener_is_refused_in_one_line(tmp_path: Path) -> None:
    first = make_session(tmp_path, [answer("hi")])
    list(first.turn("hello"))
    settings = Settings(out_dir=tmp_path / "out")
    with pytest.raises(VchatError, match="open in another vchat"):
        resume_session(settings, all_tools(), None, first.id)
    out = vchat(tmp_path, "run", "--resume", first.id, "--tool", "grayscale_image", "-a", "image=img1")
    assert out.returncode == 1 and "open in another vchat" in out.stderr and "Traceback" not in out.stderr
    first.close()
    again, _ = resume_session(settings, all_tools(), None, first.id)  # free once the first one closed
    again.close()


def test_deleting_the_latest_image_never_reuses_its_handle_and_is_reported(tmp_path: Path) -> None:
    path = _session_with_images(tmp_path, count=3)  # img1 attached, img2 and img3 made
    folder = path.parent
    next(folder.glob("img3-*.png")).unlink()
    next(folder.glob("img2-*.png")).unlink()
    settings = Settings(out_dir=tmp_path / "out")
    session, warning = resume_session(settings, all_tools(), None, folder.name)
    assert warning is not None and "img2" in warning and "img3" in warning and "missing" in warning
    step = session.run_tool("grayscale_image", "img1")
    assert [ref.handle for ref in step.images] == ["img4"]
    session.close()


def test_an_image_file_the_transcript_lost_is_not_overwritten(tmp_path: Path) -> None:
    path = _session_with_images(tmp_path, count=2)
    lines = path.read_text().splitlines()
    # A crash between writing img2's file and its transcript line: the file exists, the record does not.
    path.write_text("".join(line + "\n" for line in lines if '"handle": "img2"' not in line))
    made = next(path.parent.glob("img2-*.png"))
    before = made.read_bytes()
    session, _ = resume_session(Settings(out_dir=tmp_path / "out"), all_tools(), None, path.parent.name)
    step = session.run_tool("grayscale_image", "img1")
    session.close()
    assert step.images[0].handle == "img3" and made.read_bytes() == before


def test_stale_hidden_temporary_files_are_cleaned_on_resume(tmp_path: Path) -> None:
    path = _session_with_images(tmp_path)
    stale = path.parent / ".img3-abc123.png.tmp"
    stale.write_bytes(b"half an image")
    session, _ = resume_session(Settings(out_dir=tmp_path / "out"), all_tools(), None, path.parent.name)
    session.close()
    assert not stale.exists()


# -- defect 9: the transcript never follows a symlink --------------------------------------------------


def test_transcript_replaced_by_a_symlink_is_refused(tmp_path: Path) -> None:
    path = _session_with_images(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text(path.read_text())
    before = outside.read_text()
    path.unlink()
    path.symlink_to(outside)
    out = vchat(tmp_path, "run", "--resume", path.parent.name, "--tool", "grayscale_image", "-a", "image=img1")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "symbolic link" in out.stderr
    assert outside.read_text() == before


def test_a_live_transcript_swapped_for_a_symlink_is_not_written_through(tmp_path: Path) -> None:
    session = make_session(tmp_path, [answer("one"), answer("two")])
    list(session.turn("hi"))
    session.close()  # the next write opens the file again
    outside = tmp_path / "outside.txt"
    outside.write_text("mine\n")
    session.transcript.path.unlink()
    session.transcript.path.symlink_to(outside)
    with pytest.raises(VchatError, match="symbolic link"):
        list(session.turn("again"))
    assert outside.read_text() == "mine\n"


# -- smaller ones ----------------------------------------------------------------------------------


def test_transcript_and_images_share_one_private_permission_policy(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    ref = session.attach(write_photo(tmp_path))
    session.close()
    assert stat.S_IMODE(ref.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(session.transcript.path.stat().st_mode) == 0o600


def test_early_error_json_has_the_session_key(tmp_path: Path) -> None:
    out = vchat(tmp_path, "run", "hi", "--json", "--llm", "none")
    assert out.returncode == 1
    data = json.loads(out.stdout)
    assert set(data) == {"final", "error", "session", "images", "steps"} and data["session"] is None
    assert TRANSCRIPT_NAME  # the transcript's name is shared by the listing helpers
