"""Small command-line cases: `--resume PATH` takes a session folder; a failed `run --tool` names no deleted file."""

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


def test_failed_run_tool_lists_no_image_of_its_deleted_session(tmp_path: Path) -> None:
    import json

    from tests.helpers import write_photo
    from tests.test_cli import vchat

    photo = write_photo(tmp_path, "p.png")
    args = ["--arg", "kind=canny", "--arg", "low=300", "--arg", "high=100"]
    out = vchat(tmp_path, "run", "--tool", "detect_map", "-i", str(photo), *args, "--json")
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert result["session"] is None and "must not exceed" in result["error"]
    assert all(Path(image["path"]).exists() for image in result["images"])
