"""Options typed before a command apply to it or say where they go; a model failing at once leaves no session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.fake_openai import FakeOpenAI, Fault
from tests.helpers import answer, write_photo
from tests.test_cli import vchat


def _index_ids(tmp_path: Path) -> list[str]:
    index = tmp_path / "xdg-data" / "vchat" / "sessions.jsonl"
    if not index.exists():
        return []
    return [json.loads(line)["id"] for line in index.read_text().splitlines() if line.strip()]


def _sessions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


@pytest.mark.slow
def test_options_before_run_apply_to_it(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    with FakeOpenAI([answer("Hello there.")]) as server:
        out = vchat(tmp_path, "--base-url", server.url, "-m", "m1", "-o", str(tmp_path / "elsewhere"), "run", "hi")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "Hello there."
        assert {r.body["model"] for r in server.requests if r.body} == {"m1"}
    assert len(_sessions(tmp_path / "elsewhere")) == 1 and not _sessions(tmp_path / "out")
    # The same option after the command wins.
    out = vchat(
        tmp_path, "-o", str(tmp_path / "a"), "run", "--tool", "flip_image", "-i", str(photo), "-o", str(tmp_path / "b")
    )
    assert out.returncode == 0, out.stderr
    assert len(_sessions(tmp_path / "b")) == 1 and not _sessions(tmp_path / "a")
    # -i before `run` attaches, as it does for the chat.
    out = vchat(tmp_path, "-i", str(photo), "run", "--tool", "flip_image", "--json")
    assert out.returncode == 0, out.stderr
    assert [image["handle"] for image in json.loads(out.stdout)["images"]] == ["img1", "img2"]


@pytest.mark.slow
def test_out_before_sessions_applies(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    assert vchat(tmp_path, "run", "--tool", "flip_image", "-i", str(photo), "-o", str(tmp_path / "x")).returncode == 0
    out = vchat(tmp_path, "-o", str(tmp_path / "x"), "images")
    assert out.returncode == 0, out.stderr
    assert "img2  flip_image" in out.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--image", "a.png", "sessions"],
            "`vchat sessions` takes no --image; it goes before any command (the chat), "
            "or after the command in: vchat run",
        ),
        (["--debug", "run", "hi"], "`vchat run` takes no --debug"),
        (["--max-steps", "3", "show", "a.png"], "`vchat show` takes no --max-steps"),
    ],
)
def test_option_a_command_does_not_take_is_a_usage_error(tmp_path: Path, args: list[str], said: str) -> None:
    out = vchat(tmp_path, *args)
    assert out.returncode == 2
    assert said in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not _sessions(tmp_path / "out")


@pytest.mark.parametrize("fault", [Fault.unauthorized(), Fault.model_not_found("ghost")])
@pytest.mark.slow
def test_failed_first_request_leaves_no_session(tmp_path: Path, fault: Fault) -> None:
    with FakeOpenAI([fault]) as server:
        out = vchat(tmp_path, "run", "hi", "--base-url", server.url, "--model", "ghost")
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1
    assert not _sessions(tmp_path / "out") and _index_ids(tmp_path) == []
    assert vchat(tmp_path, "sessions").stdout.startswith("no sessions yet")


@pytest.mark.slow
def test_planner_not_downloaded_leaves_no_session(tmp_path: Path, empty_hub_cache: Path) -> None:
    out = vchat(tmp_path, "run", "hi", "--llm", "local")
    assert out.returncode == 1
    assert "is not downloaded" in out.stderr and "vchat models pull planner" in out.stderr
    assert "session " not in out.stderr
    assert not _sessions(tmp_path / "out") and _index_ids(tmp_path) == []


@pytest.mark.parametrize("backend", [["--llm", "scripted:missing.json"], ["--base-url", "http://127.0.0.1:9/v1"]])
def test_unreachable_backend_leaves_no_session(tmp_path: Path, backend: list[str]) -> None:
    out = vchat(tmp_path, "run", "hi", *backend)
    assert out.returncode == 1 and out.stderr.startswith("error: ")
    assert not _sessions(tmp_path / "out") and _index_ids(tmp_path) == []


@pytest.mark.slow
def test_failed_first_request_keeps_a_session_with_an_image_or_history(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    with FakeOpenAI([Fault.unauthorized()]) as server:
        out = vchat(tmp_path, "run", "what is this", "-i", str(photo), "--base-url", server.url)
    assert out.returncode == 1
    kept = _sessions(tmp_path / "out")
    assert len(kept) == 1 and _index_ids(tmp_path) == [kept[0].name]
    # A resumed session is never removed, whatever its next message meets.
    with FakeOpenAI([Fault.unauthorized()]) as server:
        out = vchat(tmp_path, "run", "again", "--resume", kept[0].name, "--base-url", server.url)
    assert out.returncode == 1
    assert _sessions(tmp_path / "out") == kept and _index_ids(tmp_path) == [kept[0].name]
