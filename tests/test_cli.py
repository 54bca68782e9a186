"""`vchat` as users and scripts run it: a real subprocess, the real openai client over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.fake_openai import FakeOpenAI, Fault
from tests.helpers import act, answer, write_photo


def vchat(
    tmp_path: Path, *args: str, stdin: str | None = None, timeout: float = 60, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        VCHAT_OUT=str(tmp_path / "out"),
        COLUMNS="200",
        NO_COLOR="1",
        **extra_env,
    )
    return subprocess.run(
        [sys.executable, "-m", "vchat", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=timeout,
        cwd=tmp_path,
    )


def test_version_and_help(tmp_path: Path) -> None:
    out = vchat(tmp_path, "--version")
    assert out.returncode == 0 and out.stdout.startswith("vchat ")
    out = vchat(tmp_path, "--help")
    assert out.returncode == 0
    for command in ("run", "tools", "sessions", "images"):
        assert command in out.stdout


def test_tools_lists_names_and_descriptions(tmp_path: Path) -> None:
    out = vchat(tmp_path, "tools")
    assert out.returncode == 0
    assert "detect_map" in out.stdout and "(canny_edges)" in out.stdout


def test_run_one_tool_without_a_model(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    out = vchat(tmp_path, "run", "--tool", "canny_edges", "-i", str(photo), "--arg", "low=50", "--arg", "high=150")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("Canny edges of img1 (thresholds 50/150")
    handle, path = lines[1].split("\t")
    assert handle == "img2" and Path(path).is_file()
    assert Path(path).parent.parent == tmp_path / "out"


def test_run_one_tool_json(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    out = vchat(tmp_path, "run", "--tool", "grayscale_image", "-i", str(photo), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["images"][1]["tool"] == "grayscale_image"
    assert data["images"][1]["parents"] == ["img1"]


@pytest.mark.parametrize("stream", ["1", "0"])
@pytest.mark.slow
def test_run_with_a_model_over_http(tmp_path: Path, stream: str) -> None:
    photo = write_photo(tmp_path)
    replies = [act("canny_edges", '{"image": "img1"}'), answer("The edges are in img2.")]
    with FakeOpenAI(replies) as server:
        args = ["run", "find the edges in this photo", "-i", str(photo), "--base-url", server.url, "--model", "m1"]
        out = vchat(tmp_path, *args, VCHAT_STREAM=stream)
        requests = server.chat_requests
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "The edges are in img2."
    assert len(requests) == 2
    assert requests[0].stop == ["\nObservation:"]
    assert requests[0].stream is (stream == "1")
    assert requests[0].body["model"] == "m1"
    assert requests[1].messages[-1]["content"].startswith("Observation: Canny edges of img1")
    assert "canny_edges" in out.stderr


@pytest.mark.slow
def test_json_schema(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    replies = [act("flip_image", "img1"), answer("Flipped: img2.")]
    with FakeOpenAI(replies) as server:
        out = vchat(tmp_path, "run", "flip it", "-i", str(photo), "--base-url", server.url, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"final", "images", "steps"}
    assert data["final"] == "Flipped: img2."
    assert [set(i) >= {"handle", "path", "tool", "parents"} for i in data["images"]] == [True, True]
    assert data["images"][1] == {
        "handle": "img2",
        "path": data["images"][1]["path"],
        "tool": "flip_image",
        "parents": ["img1"],
    }
    for step in data["steps"]:
        assert set(step) == {"kind", "tool", "input", "observation", "seconds"}
    assert [s["kind"] for s in data["steps"]] == ["observation", "final"]
    assert data["steps"][0]["tool"] == "flip_image"


@pytest.mark.slow
def test_step_limit_exit_code(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    with FakeOpenAI([act("grayscale_image", "img1")] * 3) as server:
        out = vchat(tmp_path, "run", "loop", "-i", str(photo), "--base-url", server.url, "--max-steps", "2")
    assert out.returncode == 3
    assert "stopped after 2 tool steps" in out.stderr


def test_scripted_backend_from_file(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    script = tmp_path / "script.txt"
    script.write_text(act("rotate_image", '{"image": "img1", "degrees": 90}') + "\n---\n" + answer("Rotated: img2"))
    out = vchat(tmp_path, "run", "rotate it", "-i", str(photo), "--llm", f"scripted:{script}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Rotated: img2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "edges", "-i", "missing.png", "--llm", "none"], "no such file"),
        (["run", "hello", "--llm", "none"], "the language model is off (llm = none)"),
        (["run", "hello", "--base-url", "https://api.example.com/v1"], "OPENAI_API_KEY"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    out = vchat(tmp_path, *args)
    assert out.returncode == 1, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 2


@pytest.mark.slow
def test_directory_and_non_image_inputs(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image")
    for bad, message in ((tmp_path, "is a folder"), (tmp_path / "notes.png", "not an image")):
        out = vchat(tmp_path, "run", "--tool", "canny_edges", "-i", str(bad))
        assert out.returncode == 1
        assert message in out.stderr


def test_server_unreachable(tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        url = server.url
    out = vchat(tmp_path, "run", "hello", "--base-url", url)
    assert out.returncode == 1
    assert "cannot reach" in out.stderr


@pytest.mark.parametrize(
    ("fault", "message"),
    [(Fault.unauthorized(), "API key"), (Fault.model_not_found("ghost"), "not found")],
)
@pytest.mark.slow
def test_server_faults_are_one_line(tmp_path: Path, fault: Fault, message: str) -> None:
    with FakeOpenAI([fault]) as server:
        out = vchat(tmp_path, "run", "hello", "--base-url", server.url, "--model", "ghost")
    assert out.returncode == 1
    assert message in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_interactive_loop_reads_piped_lines(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    replies = [act("canny_edges", "img1"), answer("Edges: img2")]
    with FakeOpenAI(replies) as server:
        out = vchat(tmp_path, "--base-url", server.url, "-i", str(photo), stdin="find the edges\n/images\n/quit\n")
    assert out.returncode == 0, out.stderr
    assert "attached img1" in out.stdout
    assert "Edges: img2" in out.stdout
    assert "img2  canny_edges" in out.stdout
    assert "continue (from any folder) with: vchat --resume " in out.stdout


@pytest.mark.slow
def test_sessions_and_images_commands(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    assert vchat(tmp_path, "run", "--tool", "flip_image", "-i", str(photo)).returncode == 0
    out = vchat(tmp_path, "sessions")
    assert out.returncode == 0 and " 2 " in out.stdout
    out = vchat(tmp_path, "images")
    assert out.returncode == 0
    assert "img1  attached" in out.stdout and "  img2  flip_image" in out.stdout


@pytest.mark.slow
def test_run_resume_continues_a_session(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    assert vchat(tmp_path, "run", "--tool", "flip_image", "-i", str(photo)).returncode == 0
    with FakeOpenAI([act("grayscale_image", "img2"), answer("Gray: img3")]) as server:
        out = vchat(tmp_path, "run", "make it gray", "--resume", "--base-url", server.url, "--json")
    data = json.loads(out.stdout)
    assert out.returncode == 0, out.stderr
    assert [i["handle"] for i in data["images"]] == ["img1", "img2", "img3"]
    assert data["images"][2]["parents"] == ["img2"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--resume"], ["--resume", "latest"]),
        (["--resume", "--verbose"], ["--resume", "latest", "--verbose"]),
        (["run", "--resume", "make it gray"], ["run", "--resume", "latest", "make it gray"]),
        (["run", "--resume", "20261126-101500-3fa2", "x"], ["run", "--resume", "20261126-101500-3fa2", "x"]),
        (["--resume", "20261126"], ["--resume", "20261126"]),
    ],
)
def test_bare_resume_means_latest(argv: list[str], expected: list[str]) -> None:
    from vchat.cli.argv import resume_value

    assert resume_value(argv) == expected


def test_run_one_tool_with_more_images_than_it_takes(tmp_path: Path) -> None:
    first, second = write_photo(tmp_path, "a.png"), write_photo(tmp_path, "b.png")
    out = vchat(tmp_path, "run", "--tool", "canny_edges", "-i", str(first), "-i", str(second))
    assert out.returncode == 2  # a bad command line
    assert "canny_edges takes 1 image but 2 were given" in out.stderr and "vchat batch --tool" in out.stderr
    assert not (tmp_path / "out").exists()  # refused before anything ran
