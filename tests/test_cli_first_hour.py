"""Small things a new user trips over: positional values after `run --tool`, `--llm none`, `vchat doctor`'s verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fake_openai import FakeOpenAI
from tests.helpers import answer, write_photo
from tests.test_cli import vchat


def test_run_tool_takes_values_in_order_like_the_chat(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    out = vchat(tmp_path, "run", "--tool", "flip_image", "-i", str(photo), "vertical")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Vertical flip of img1")
    bad = vchat(tmp_path, "run", "--tool", "flip_image", "-i", str(photo), "sideways")
    assert bad.returncode == 2 and "horizontal, vertical" in bad.stderr and "Traceback" not in bad.stderr


def test_run_tool_still_refuses_words_no_input_takes(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    out = vchat(tmp_path, "run", "--tool", "grayscale_image", "-i", str(photo), "very grey please")
    assert out.returncode == 2 and "has no text input" in out.stderr


def test_llm_none_says_the_model_is_off_not_missing(tmp_path: Path) -> None:
    out = vchat(tmp_path, "run", "describe it", "--llm", "none")
    assert out.returncode == 1
    assert "language model is off" in out.stderr and "no language model found" not in out.stderr


@pytest.mark.slow
def test_doctor_fails_when_the_model_does_not_answer_and_says_so_once(tmp_path: Path) -> None:
    out = vchat(tmp_path, "doctor", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--llm", "openai")
    assert out.returncode == 1, out.stdout + out.stderr
    answers = next(line for line in out.stdout.splitlines() if line.startswith("answers"))
    assert answers.count("server running") == 1, answers


@pytest.mark.slow
def test_doctor_takes_the_model_flags_and_passes_when_it_answers(tmp_path: Path) -> None:
    with FakeOpenAI([answer("ok")], models=["m1"]) as fake:
        out = vchat(tmp_path, "doctor", "--base-url", fake.url, "--model", "m1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"m1 @ 127.0.0.1:{fake.port}" in out.stdout and "answers         yes" in out.stdout


def test_steps_command_sets_the_limit_the_hint_names(tmp_path: Path) -> None:
    import io

    from rich.console import Console
    from tests.helpers import act, make_session

    from vchat.cli.repl import Repl
    from vchat.errors import VchatError

    loop = [act("flip_image", '{"image": "img1"}')] * 3
    session = make_session(tmp_path, [*loop, answer("done")])
    session.attach(write_photo(tmp_path))
    out = io.StringIO()
    repl = Repl(session, Console(file=out, width=200))
    repl.handle("/steps 2")
    repl.handle("flip it a lot")
    text = out.getvalue()
    assert "stopped after 2 tool steps" in text and "/steps N in the chat" in text
    repl.handle("/steps")
    assert "up to 2 tool steps per message" in out.getvalue()
    with pytest.raises(VchatError, match="usage: /steps N"):
        repl.handle("/steps many")


def test_a_clean_exit_leaves_no_lock_file(tmp_path: Path) -> None:
    from tests.helpers import make_session

    session = make_session(tmp_path, [answer("hi")])
    list(session.turn("hello"))
    assert (session.folder / ".lock").exists()  # held while open
    session.close()
    assert not (session.folder / ".lock").exists()
    assert sorted(p.name for p in session.folder.iterdir()) == ["session.jsonl"]


@pytest.mark.slow
def test_the_denoising_bar_counts_the_steps_asked_for(tmp_path: Path, hub_cache: Path) -> None:
    """SD 1.5's PNDM scheduler runs 5 timesteps for 4 steps; the bar must not say 5 of 4 (or 31 of 30)."""
    from tests.helpers import make_session

    from vchat.session import Observers

    session = make_session(tmp_path)
    seen: list[tuple[int, int]] = []
    observers = Observers(
        progress=lambda done, total, label: seen.append((done, total)) if label == "denoising" else None
    )
    inputs = {"prompt": "a car", "steps": 4, "width": 64, "height": 64}
    step = session.run_tool("generate_image", None, inputs, observers=observers)
    assert step.failure is None, step.observation
    assert len(seen) == 5  # every timestep reported, the extra one too
    assert {total for _, total in seen} == {4} and max(done for done, _ in seen) == 4
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_sessions_name_a_tool_only_session_by_its_first_call(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    made = vchat(tmp_path, "run", "--tool", "flip_image", "-i", str(photo), "vertical")
    assert made.returncode == 0, made.stderr
    listing = vchat(tmp_path, "sessions")
    row = next(line for line in listing.stdout.splitlines() if line.startswith("20"))
    assert "(tool) flip_image" in row, listing.stdout
    helptext = vchat(tmp_path, "sessions", "--help").stdout
    assert "default ./vchat-out" not in helptext and "index lists every" in helptext


def test_batch_resume_with_nothing_to_do_prints_no_rate(tmp_path: Path) -> None:
    from vchat.batch.runner import Summary

    idle = Summary(total=3, skipped=3, seconds=0.01, manifest="out/manifest.jsonl")
    assert idle.line() == "batch: nothing to do, 3 already done; manifest out/manifest.jsonl"
    ran = Summary(total=3, done=1, skipped=2, seconds=2.0, manifest="m")
    assert "(0.5 images/s)" in ran.line()
    stopped = Summary(total=3, seconds=0.5, manifest="m", stopped="interrupted")
    assert "3 not run" in stopped.line() and "nothing to do" not in stopped.line()


@pytest.mark.slow
def test_offline_pull_of_a_cached_model_says_it_is_there(tmp_path: Path, hub_cache: Path) -> None:
    out = vchat(tmp_path, "models", "pull", "planner", VCHAT_DEVICE="cpu")
    assert out.returncode == 0, out.stderr
    assert "already downloaded: planner" in out.stderr
    missing = vchat(tmp_path, "models", "pull", "planner", "sd15", VCHAT_DEVICE="cpu", HF_HUB_CACHE=str(tmp_path / "x"))
    assert missing.returncode == 1 and "already downloaded" not in missing.stderr  # nothing cached there: offline


def test_an_identical_call_is_not_run_again_and_the_model_is_told(tmp_path: Path) -> None:
    from tests.helpers import act, make_session

    same = act("flip_image", '{"image": "img1", "direction": "vertical"}')
    replies = [same, act("flip_image", "img1, vertical"), answer("done")]
    session = make_session(tmp_path, replies)
    session.attach(write_photo(tmp_path))
    steps = [s for s in session.turn("flip it") if s.kind == "observation"]
    assert len(steps) == 2
    assert steps[0].failure is None and steps[1].failure == "bad_input"
    assert "already called flip_image with exactly this input" in (steps[1].observation or "")
    assert len(session.store) == 2  # img1 and the one flip: the repeat made nothing
    told = session.llm.calls[-1][-1]["content"]  # type: ignore[union-attr]
    assert "already called flip_image" in str(told)


def test_agent_batch_failure_lines_name_the_file(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from tests.helpers import act

    photo = write_photo(tmp_path / "in", "holiday.png")
    script = tmp_path / "loop.json"
    script.write_text(json.dumps([act("flip_image", "img1"), act("rotate_image", "img1, 90"), answer("x")]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "c"), XDG_DATA_HOME=str(tmp_path / "d"))
    cmd = [sys.executable, "-m", "vchat", "batch", "flip", "in", "--out", "o", "--llm", f"scripted:{script}"]
    out = subprocess.run([*cmd, "--max-steps", "1"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 4, out.stderr
    failed = [line for line in out.stderr.splitlines() if line.startswith("failed:")]
    assert failed and str(photo) in failed[0] and "stopped after 1 tool steps" in failed[0]


def test_a_loading_line_comes_before_the_model_libraries_are_imported(tmp_path: Path) -> None:
    from tests.helpers import make_session

    from vchat.session import Observers

    session = make_session(tmp_path)
    seen: list[tuple[int, int, str]] = []
    with session.observed(Observers(progress=lambda done, total, label: seen.append((done, total, label)))):
        manager = session.models
        assert session.models is manager  # made once, said once
    assert seen == [(0, 0, "loading models…")]


def test_doctor_shows_the_planner_dtype_apart(capsys: object) -> None:
    from vchat.cli.models import doctor
    from vchat.config import Settings

    settings = Settings(llm="none")
    settings.runtime.device = "cpu"
    assert doctor(settings) is True  # nothing to ask: the model is off on purpose
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    row = next(line for line in out.splitlines() if line.startswith("dtype"))
    assert "float32 (tools), bfloat16 (planner)" in row
    settings.runtime.dtype = "float32"
    doctor(settings)
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("dtype"))  # type: ignore[attr-defined]
    assert "float32 (setting 'float32')" in row and "planner" not in row


def test_a_lock_taken_on_a_removed_lock_file_is_taken_again(tmp_path: Path, monkeypatch: object) -> None:
    """The holder removes `.lock` on release; a second vchat that opened the old file re-takes a fresh one."""
    import os

    from vchat.store import transcript
    from vchat.store.transcript import SessionLock, TranscriptError

    first, second = SessionLock(tmp_path), SessionLock(tmp_path)
    first.acquire()
    real_open = os.open
    opened: list[int] = []

    def open_then_release(path: object, flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags, mode)  # type: ignore[arg-type]
        if not opened:
            opened.append(fd)
            first.release()  # the holder leaves between this open and the flock: its file is unlinked
        return fd

    monkeypatch.setattr(transcript.os, "open", open_then_release)  # type: ignore[attr-defined]
    second.acquire()
    monkeypatch.undo()  # type: ignore[attr-defined]
    third = SessionLock(tmp_path)
    try:
        third.acquire()
    except TranscriptError as exc:
        assert "open in another vchat" in str(exc)
    else:
        raise AssertionError("two vchats hold the same session")
    second.release()
    assert not (tmp_path / ".lock").exists()
