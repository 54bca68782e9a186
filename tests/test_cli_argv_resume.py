"""`--resume PATH`: a session folder named by its path is the session, not the prompt."""

from __future__ import annotations

from pathlib import Path

from vchat.cli.argv import resume_value


def test_resume_takes_a_session_folder_path(tmp_path: Path) -> None:
    folder = tmp_path / "vchat-out" / "my-session"
    folder.mkdir(parents=True)
    (folder / "session.jsonl").write_text('{"type": "start"}\n')
    argv = ["run", "--resume", str(folder), "make it purple"]
    assert resume_value(argv) == argv


def test_a_folder_without_a_transcript_is_still_the_prompt(tmp_path: Path) -> None:
    argv = ["run", "--resume", str(tmp_path), "make it purple"]
    assert resume_value(argv) == ["run", "--resume", "latest", str(tmp_path), "make it purple"]
