"""A new user's first hour: help placeholders, exit codes, messages that point the way, offline pull."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from tests.helpers import answer, write_photo
from tests.test_cli import vchat

from vchat.chat.steps import Step
from vchat.ui.render import StepRenderer, plural

# Item 6: help shows what to type, never a Python type name.


HELP_COMMANDS = [[], ["run"], ["show"], ["images"], ["sessions"], ["models"], ["models", "pull"]]
HELP_COMMANDS += [["batch"], ["bench"], ["mcp"], ["tools"], ["doctor"]]


@pytest.mark.parametrize("command", HELP_COMMANDS)
def test_help_has_no_type_placeholders(tmp_path: Path, command: list[str]) -> None:
    out = vchat(tmp_path, *command, "--help")
    assert out.returncode == 0, out.stderr
    assert not re.search(r"<(bool|str|int|float|path|list\[[^\]]*\])>", out.stdout, re.IGNORECASE), out.stdout


def test_help_flags_show_no_value_and_options_a_metavar(tmp_path: Path) -> None:
    rows = {
        line.split()[1]: line
        for line in vchat(tmp_path, "run", "--help").stdout.splitlines()
        if len(line.split()) > 1 and line.split()[1].startswith("--")
    }
    assert re.search(r"--json\s+Print one JSON", rows["--json"])  # a flag: nothing between name and help
    assert re.search(r"--verbose\s+-v\s+Show", rows["--verbose"])
    assert " PATH " in rows["--image"] and " KEY=VALUE " in rows["--arg"] and " N " in rows["--max-steps"]
    assert " NAME " in rows["--tool"] and " DIR " in rows["--out"]


# Item 10: a bad command line exits 2, with one line, before anything is made.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--tool", "canny", "-i", "photo.png"], "unknown tool 'canny'"),
        (["run", "--tool", "canny_edges", "-i", "photo.png", "--arg", "low"], "expected KEY=VALUE"),
        (["--preview", "bogus"], "--preview must be one of"),
        (["run", "describe it", "-i", "photo.png", "--max-steps", "0"], "--max-steps must be at least 1"),
        (["--max-steps", "0"], "--max-steps must be at least 1"),
        (["run", "   ", "--llm", "none"], "empty prompt"),
        (["run", "hi", "--base-url", "localhost:11434"], "needs a scheme: http://localhost:11434/v1"),
        # A bad --arg value, key or image is a bad command line too, for run and batch alike.
        (["run", "--tool", "canny_edges", "-i", "photo.png", "--arg", "low=abc"], "low must be a number, not 'abc'"),
        (["run", "--tool", "canny_edges", "-i", "photo.png", "--arg", "low=99999"], "low must be at most 1000"),
        (["run", "--tool", "canny_edges", "-i", "photo.png", "--arg", "lo=50"], "no input 'lo'; did you mean low?"),
        (["run", "--tool", "canny_edges", "-i", "photo.png", "--arg", "image=img5"], "there is no image 'img5'"),
        (["run", "--tool", "canny_edges"], "canny_edges needs image: give -i PATH"),
        (["run", "--tool", "generate_image"], "generate_image needs prompt"),
        (["run", "--tool", "canny_edges", "a prompt", "-i", "photo.png"], "canny_edges: low must be a number, not 'a'"),
        (["batch", "--tool", "canny_edges", "photo.png", "--out", "out", "--arg", "low=abc"], "low must be a number"),
        (["batch", "--tool", "canny_edges", "photo.png", "--out", "out", "--arg", "high=-1"], "at least 0"),
        (["batch", "--tool", "canny_edges", "photo.png", "--out", "out", "--arg", "hi=9"], "did you mean high?"),
    ],
)
@pytest.mark.slow
def test_bad_command_line_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    write_photo(tmp_path)
    out = vchat(tmp_path, *args, stdin="")
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "expects {" not in out.stderr  # the JSON shape shown to the model is not for the user
    assert not (tmp_path / "out").exists()  # no session folder for a command that never ran
    assert not (tmp_path / "xdg-data" / "vchat" / "sessions.jsonl").exists()  # nor an index entry


# Item 9: messages that point the way.


@pytest.mark.slow
def test_unknown_tool_suggests_the_close_names(tmp_path: Path) -> None:
    out = vchat(tmp_path, "run", "--tool", "canny", "-i", str(write_photo(tmp_path)))
    assert "did you mean canny_edges" in out.stderr
    out = vchat(tmp_path, "run", "--tool", "flip", "-i", str(write_photo(tmp_path)))
    assert "did you mean flip_image" in out.stderr


def test_text_without_a_command_points_at_run_and_the_chat(tmp_path: Path) -> None:
    out = vchat(tmp_path, "-i", "photo.png", "make the sky purple")
    assert out.returncode == 2
    assert "No such command" not in out.stderr
    assert "vchat run 'make the sky purple' -i photo.png" in out.stderr and "chat" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_typo_of_a_command_still_gets_did_you_mean(tmp_path: Path) -> None:
    out = vchat(tmp_path, "imags")
    assert out.returncode == 2 and "images" in out.stderr


@pytest.mark.slow
def test_resume_of_an_unknown_session_names_the_session(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    assert vchat(tmp_path, "run", "--tool", "flip_image", "-i", str(photo)).returncode == 0
    out = vchat(tmp_path, "--resume", "nosuch", stdin="")
    assert out.returncode == 1
    assert "No such command" not in out.stderr
    assert "no session 'nosuch'" in out.stderr and "vchat sessions" in out.stderr


def _run_in_a_terminal(tmp_path: Path, *args: str) -> str:
    """Run vchat with stdout and stderr on a pseudo-terminal, as a user at a terminal sees it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(VCHAT_OUT=str(tmp_path / "out"), VCHAT_PREVIEW="none", COLUMNS="300", TERM="xterm")
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_DATA_HOME=str(tmp_path / "xdg-data"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes vchat
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "vchat", *args], env)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.waitpid(pid, 0)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def test_run_tool_at_a_terminal_prints_its_result_once(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    screen = _run_in_a_terminal(tmp_path, "run", "--tool", "flip_image", "-i", str(photo))
    assert screen.count("Horizontal flip of img1") == 1, screen
    assert screen.count("img2-flip_image.png") == 1, screen


@pytest.mark.slow
def test_tool_failure_shows_the_whole_fix_and_nothing_meant_for_the_model(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    out = vchat(
        tmp_path,
        "run",
        "--tool",
        "instruct_edit",
        "-i",
        str(photo),
        "--arg",
        "instruction=make it winter",
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(tmp_path / "empty-hub"),
        timeout=120,
    )
    assert out.returncode == 1
    both = out.stdout + out.stderr
    assert "do not use another tool" not in both and "tell the user" not in both
    # The fix is whole, never cut with "…": the command to run and the alternative after it.
    assert re.search(r"run `vchat models pull \w+` with network access, or set \[models\] \w+ to a folder", out.stderr)


def test_renderer_never_cuts_a_failure() -> None:
    from vchat.errors import ToolUnavailable

    long = (
        "generate_image failed: model sd15.unet (stable-diffusion-v1-5/stable-diffusion-v1-5) is not downloaded "
        "(HF_HUB_OFFLINE is set); run `vchat models pull sd15` with network access, or set [models] sd15 to a "
        "folder"
    )
    step = Step(
        "observation",
        long,
        tool="generate_image",
        observation=f"{long}; {ToolUnavailable.for_model}",
        failure="blocked",
    )
    buffer = io.StringIO()
    StepRenderer(Console(file=buffer, width=100)).step(step)
    text = " ".join(buffer.getvalue().split())
    assert "or set [models] sd15 to a folder" in text and "…" not in text
    assert ToolUnavailable.for_model not in text


def test_plurals() -> None:
    assert [plural(n, "image") for n in (0, 1, 2)] == ["0 images", "1 image", "2 images"]


def test_chat_exit_line_says_one_image(tmp_path: Path) -> None:
    out = vchat(tmp_path, "-i", str(write_photo(tmp_path)), "--llm", "none", "--preview", "none", stdin="")
    assert out.returncode == 0, out.stderr
    assert ": 1 image in " in out.stdout, out.stdout


def test_save_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    from tests.helpers import make_session

    from vchat.cli.repl import Repl
    from vchat.errors import VchatError

    session = make_session(tmp_path)
    session.attach(write_photo(tmp_path))
    repl = Repl(session, Console(file=io.StringIO()))
    with pytest.raises(VchatError, match=r"folder .*nowhere does not exist"):
        repl.command(f"/save img1 {tmp_path / 'nowhere' / 'x.png'}")


# Item 4: `vchat models pull` without a network: one line, at once.


def test_models_pull_without_a_network_is_one_line(tmp_path: Path) -> None:
    out = vchat(
        tmp_path,
        "models",
        "pull",
        "blip_caption",
        HF_ENDPOINT="http://127.0.0.1:1",  # nothing listens on port 1: refused at once, like a machine offline
        HF_HUB_CACHE=str(tmp_path / "hub"),
        timeout=20,
    )
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert "cannot be reached" in out.stderr and "Traceback" not in out.stderr


# Item 13: nothing downloaded reads "no", not "partial 2/7".


def test_models_with_nothing_downloaded_says_no(tmp_path: Path) -> None:
    out = vchat(tmp_path, "models", HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    assert out.returncode == 0, out.stderr
    assert "partial" not in out.stdout
    sd15 = next(line for line in out.stdout.splitlines() if line.startswith("sd15 "))
    assert " no " in sd15


# Item 14: `vchat show` imports only what showing needs.


@pytest.mark.parametrize(("mode", "starts"), [("sixel", b"\x1bP"), ("kitty", b"\x1b_G")])
def test_show_process_imports_no_command_line_framework(tmp_path: Path, mode: str, starts: bytes) -> None:
    photo = write_photo(tmp_path)
    heavy = {"typer", "click", "rich", "pydantic", "vchat.cli.app", "vchat.session", "torch", "openai"}
    # Nor the session's image store (threads, JSON, the PNG writer), nor tmux's or a terminal's probes.
    heavy |= {"vchat.store.images", "vchat.store.files", "concurrent.futures", "subprocess"}
    heavy |= {"pathlib", "dataclasses"}  # each costs more than its use on this path (os.path, NamedTuple)
    if mode == "kitty":  # a PNG for the terminal: numpy is for the sixel and half-block encoders only
        heavy |= {"numpy", "vchat.ui.sixel"}
        heavy -= {"subprocess"}  # Pillow's PNG save loads its JPEG plugin, which imports subprocess
    code = (
        "import sys\n"
        "from vchat.entry import main\n"
        f"sys.argv = ['vchat', 'show', '--preview', {mode!r}, {str(photo)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"heavy = {sorted(heavy)!r}\n"
        "sys.stderr.write(f'exit={code} loaded={sorted(set(heavy) & set(sys.modules))}\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.stderr.decode().strip().splitlines()[-1] == "exit=0 loaded=[]", done.stderr.decode()
    assert done.stdout.startswith(starts) and done.stdout.rstrip().endswith(os.fsencode(photo))


def test_show_of_files_that_all_fail_waits_for_its_numpy_import_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image")
    out = vchat(tmp_path, "show", "--preview", "sixel", "missing.png", "notes.png")
    assert out.returncode == 1 and "Traceback" not in out.stderr and "Fatal" not in out.stderr, out.stderr
    assert out.stderr.count("vchat show: ") == 2 and "no such file" in out.stderr and "not an image" in out.stderr


def test_show_help_and_bad_mode_still_go_through_the_full_command_line(tmp_path: Path) -> None:
    assert "--preview" in vchat(tmp_path, "show", "--help").stdout
    out = vchat(tmp_path, "show", "--preview", "bogus", str(write_photo(tmp_path)))
    assert out.returncode == 2 and "--preview must be one of" in out.stderr


def test_previews_do_not_resample_for_a_slight_upscale() -> None:
    from PIL import Image

    from vchat.ui.preview import scale_to_cells

    image = Image.new("RGB", (1024, 1024), (10, 20, 30))
    assert scale_to_cells(image, cols=103, rows=52, cell=(10, 20)).size == (1024, 1024)  # box 1030×1040
    assert scale_to_cells(image, cols=60, rows=52, cell=(10, 20)).size == (600, 600)  # smaller box: scaled down
    assert scale_to_cells(Image.new("RGB", (300, 300)), cols=60, rows=52, cell=(10, 20)).size == (600, 600)


# Found on a walk through as a new user: listings piped into grep or a file were cut at 80 columns.


@pytest.mark.slow
def test_listings_into_a_pipe_keep_whole_rows(tmp_path: Path) -> None:
    script = tmp_path / "reply.txt"
    script.write_text(answer("Done."))
    message = "please describe the colours and shapes of this picture"
    elsewhere = tmp_path / "a folder with a rather long name" / "vchat-out"
    assert vchat(tmp_path, "run", message, "--llm", f"scripted:{script}", "-o", str(elsewhere)).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # a pipe, and no width asked for
    env.update(XDG_DATA_HOME=str(tmp_path / "xdg-data"), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"))
    env["VCHAT_OUT"] = str(tmp_path / "out")
    listing = subprocess.run(
        [sys.executable, "-m", "vchat", "sessions"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    ).stdout
    row = next(line for line in listing.splitlines() if message[:20] in line)
    assert str(elsewhere) in row and message in row, listing  # folder and message whole, on one line
    models = subprocess.run(
        [sys.executable, "-m", "vchat", "models"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    ).stdout
    assert "stable-diffusion-v1-5/stable-diffusion-inpainting" in models, models
