"""Sessions from any folder (the index in the user data folder), no session left by a failed `run --tool`, and the
index under concurrent vchat processes (every add kept, every removal final) or planted in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.helpers import write_photo

from vchat.store.index import all_sessions, index_path, register


def run(cwd: Path, data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`vchat ARGS` from folder `cwd`, with no VCHAT_OUT: the default output folder is ./vchat-out there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(XDG_CONFIG_HOME=str(data / "config"), XDG_DATA_HOME=str(data), COLUMNS="250", NO_COLOR="1")
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "vchat", *args], capture_output=True, text=True, env=env, cwd=cwd, input=stdin
    )


@pytest.mark.slow
def test_sessions_list_resume_and_images_from_another_folder(tmp_path: Path) -> None:
    data, project, elsewhere = tmp_path / "data", tmp_path / "project", tmp_path / "elsewhere"
    photo = write_photo(tmp_path)
    made = run(project, data, "run", "--tool", "flip_image", "-i", str(photo), "--json")
    assert made.returncode == 0, made.stderr
    session_id = json.loads(made.stdout)["session"]
    folder = project / "vchat-out" / session_id

    listed = run(elsewhere, data, "sessions")
    assert listed.returncode == 0, listed.stderr
    assert session_id in listed.stdout and str(project / "vchat-out") in listed.stdout  # where it lives

    tree = run(elsewhere, data, "images", session_id[:15])
    assert tree.returncode == 0, tree.stderr
    assert "img2  flip_image" in tree.stdout

    resumed = run(elsewhere, data, "run", "--resume", session_id, "--tool", "grayscale_image", "--arg", "image=img2")
    assert resumed.returncode == 0, resumed.stderr
    # --out decides where a new session goes; a resumed one keeps writing into its own folder.
    assert (folder / "img3-grayscale_image.png").is_file()
    assert not (elsewhere / "vchat-out").exists()

    chat = run(elsewhere, data, "--resume", session_id, "--llm", "none", stdin="/images\n/quit\n")
    assert chat.returncode == 0, chat.stderr
    assert "img3  grayscale_image" in chat.stdout
    assert f"continue (from any folder) with: vchat --resume {session_id}" in chat.stdout


def test_exit_hint_names_the_folder_when_the_index_cannot_be_written(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the data folder would be")
    photo = write_photo(tmp_path)
    chat = run(tmp_path / "here", blocked, "--llm", "none", "-i", str(photo), stdin="/quit\n")
    assert chat.returncode == 0, chat.stderr
    out_dir = tmp_path / "here" / "vchat-out"
    assert f"continue (from any folder) with: vchat --out {out_dir} --resume " in chat.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--tool", "canny_edges", "--arg", "lwo=50"],  # no such input
        ["--tool", "canny_edges", "--arg", "low=fifty"],  # not a number
        ["--tool", "canny_edges", "--arg", "low=5000"],  # out of range
        ["--tool", "crop_image", "--arg", "left=1"],  # required inputs missing
        ["--tool", "canny_edges", "--arg", "image=img7"],  # no such image
        ["--tool", "caption_image"],  # the tool itself fails: its model is not downloaded
    ],
)
@pytest.mark.slow
def test_a_failed_run_tool_leaves_no_session(tmp_path: Path, args: list[str]) -> None:
    photo = write_photo(tmp_path)
    env_cache = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    os.environ.update(env_cache)
    try:
        out = run(tmp_path / "here", tmp_path / "data", "run", *args, "-i", str(photo), "--json")
    finally:
        for key in env_cache:
            os.environ.pop(key)
    assert out.returncode != 0
    assert json.loads(out.stdout.splitlines()[-1])["session"] is None
    assert "Traceback" not in out.stderr
    assert not list((tmp_path / "here").glob("vchat-out/*"))
    assert "no sessions yet" in run(tmp_path / "here", tmp_path / "data", "sessions").stdout


def test_index_skips_folders_that_are_gone_and_compacts(tmp_path: Path) -> None:
    live = tmp_path / "out" / "20261129-100000-aaaa"
    live.mkdir(parents=True)
    (live / "session.jsonl").write_text("{}\n")
    for n in range(60):
        assert register(f"gone-{n}", tmp_path / "out" / f"gone-{n}")
    assert register(live.name, live)
    index_path().write_text(index_path().read_text() + "not json\n")
    assert all_sessions(tmp_path / "elsewhere") == [live]
    assert len(index_path().read_text().splitlines()) == 1  # dead lines dropped once many piled up


WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from vchat.store.index import register, unregister

    name, count, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    for i in range(count):
        assert register(f"{name}-{i}", folder / f"{name}-{i}")
        if i % 2:
            unregister(f"{name}-{i - 1}")  # every even entry is removed again, while the others add theirs
    """
)


def test_concurrent_adds_and_removes_lose_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    workers, count = 4, 100
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, f"w{k}", str(count), str(tmp_path / "s")], env=env)
        for k in range(workers)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * workers
    data = tmp_path / "data" / "vchat" / "sessions.jsonl"
    ids = [json.loads(line)["id"] for line in data.read_text().splitlines()]
    expected = {f"w{k}-{i}" for k in range(workers) for i in range(count) if i % 2}
    assert len(ids) == len(set(ids))
    assert set(ids) == expected  # no add lost, no removed entry back


def test_a_fifo_in_place_of_the_index_is_skipped(tmp_path: Path) -> None:
    data = tmp_path / "data" / "vchat"
    data.mkdir(parents=True)
    os.mkfifo(data / "sessions.jsonl")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    done = subprocess.run(
        [sys.executable, "-m", "vchat", "sessions"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert done.returncode == 0 and "no sessions yet" in done.stdout + done.stderr, done.stderr
