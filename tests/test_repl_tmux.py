"""The REPL driven in a real terminal: tmux runs `vchat`, send-keys types, capture-pane reads the screen."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import act, answer, write_photo

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


class Pane:
    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", self.name], capture_output=True, text=True
        )
        return out.stdout

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; screen:\n{self.screen()}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0


def start(name: str, tmp_path: Path, args: list[str], extra_env: dict[str, str] | None = None) -> Pane:
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "VCHAT_OUT": str(tmp_path / "out"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        # A worktree's tests must drive that worktree's code, not the installed copy.
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        **(extra_env or {}),
    }
    command = " ".join(
        [
            "env",
            "-i",
            *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
            shlex.quote(sys.executable),
            "-m",
            "vchat",
            *(shlex.quote(a) for a in args),
        ]
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", "150", "-y", "50", command], check=True, cwd=tmp_path
    )
    return Pane(name)


@pytest.fixture
def repl(tmp_path: Path) -> Iterator[tuple[Pane, Path]]:
    photo = write_photo(tmp_path, "cat photo.png")
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                act("canny_edges", "img1"),
                answer("Edges are in img2."),
                {"reply": answer("this reply is far too slow"), "delay": 30},
                answer("Still here after the cancel."),
                answer("Two lines received."),
            ]
        )
    )
    name = f"vchat-test-{uuid.uuid4().hex[:8]}"
    pane = start(name, tmp_path, ["--llm", f"scripted:{script}", "--preview", "none", "-i", str(photo)])
    try:
        pane.wait_for("/help for commands")
        yield pane, tmp_path
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


@pytest.mark.slow
def test_chat_completion_cancel_and_quit(repl: tuple[Pane, Path]) -> None:
    pane, tmp_path = repl
    pane.wait_for("attached img1")

    pane.type("find the edges")
    pane.send("Enter")
    screen = pane.wait_for("Edges are in img2.")
    assert "canny_edges" in screen

    # Tab completion of a slash command, then of an image handle.
    pane.type("/ima")
    pane.send("Tab")
    pane.wait_for("/images")
    pane.send("Enter")
    pane.wait_for("img2  canny_edges")

    pane.type("/show im")
    pane.send("Tab")
    time.sleep(0.3)
    pane.send("Escape")
    pane.send("C-u")

    # Ctrl-C while the model is slow: the turn is cancelled and the REPL goes on.
    pane.type("say something slowly")
    pane.send("Enter")
    time.sleep(1.0)
    pane.send("C-c")
    pane.wait_for("cancelled")
    pane.type("are you there?")
    pane.send("Enter")
    pane.wait_for("Still here after the cancel.")

    # Esc-Enter (Alt-Enter) makes a new line instead of sending.
    pane.type("line one")
    pane.send("Escape", "Enter")
    pane.type("line two")
    pane.send("Enter")
    pane.wait_for("Two lines received.")

    pane.type("/quit")
    pane.send("Enter")
    deadline = time.monotonic() + 10
    while pane.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pane.alive(), "vchat did not exit on /quit"
    transcript = next((tmp_path / "out").glob("*/session.jsonl")).read_text()
    assert '"type": "cancelled"' in transcript
    assert '"text": "line one\\nline two"' in transcript


@pytest.mark.slow
def test_ctrl_c_stops_a_slow_generation_and_leaves_no_file(tmp_path: Path, hub_cache: Path) -> None:
    """A real diffusion tool (tiny model, many steps) stopped mid-run from the keyboard."""
    name = f"vchat-test-{uuid.uuid4().hex[:8]}"
    env = {"HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    pane = start(name, tmp_path, ["--llm", "none", "--preview", "none"], env)
    try:
        pane.wait_for("/help for commands")
        pane.type('/tool generate_image {"prompt": "a red car", "steps": 150, "width": 64, "height": 64}')
        pane.send("Enter")
        pane.wait_for("denoising", timeout=60)
        pane.send("C-c")
        pane.wait_for("cancelled", timeout=20)
        pane.type("/images")
        pane.send("Enter")
        pane.wait_for("(no images)")
        assert not list((tmp_path / "out").glob("*/*.png"))
        assert not list((tmp_path / "out").glob("*/*.tmp"))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


@pytest.mark.slow
def test_tool_arguments_typed_paths_streamed_bytes_and_model_switch(tmp_path: Path) -> None:
    """A new user's first hour in a terminal: /tool KEY=VALUE, a typed path, the answer's exact text, /model."""
    from tests.fake_openai import FakeOpenAI

    photo = write_photo(tmp_path, "cat photo.png")
    other = write_photo(tmp_path / "holiday", "beach.png", seed=3)
    # The last 24 characters are held back while streaming; a space right before them once came out twice.
    streamed = "I found the edges of the image you attached and it is ready for you."
    assert streamed[-25] == " "
    script = tmp_path / "script.json"
    script.write_text(json.dumps([answer("A yellow square on blue."), answer(streamed)]))
    name = f"vchat-test-{uuid.uuid4().hex[:8]}"
    with FakeOpenAI([answer("Hello from the server model.")], models=["m1"]) as fake:
        pane = start(name, tmp_path, ["--llm", f"scripted:{script}", "--preview", "none", "-i", str(photo)])
        try:
            pane.wait_for("/help for commands")
            pane.type("/tool canny_edges img1 low=50")
            pane.send("Enter")
            pane.wait_for("img2-canny_edges.png")
            pane.type("/tool flip_image img1 vertical")
            pane.send("Enter")
            pane.wait_for("img3-flip_image.png")

            pane.type(f"what is in {other}?")
            pane.send("Enter")
            screen = pane.wait_for("A yellow square on blue.")
            assert f"attached img4 64x48  {other}" in screen
            assert screen.index("attached img4") < screen.index("A yellow square on blue.")

            pane.type("are the edges done?")
            pane.send("Enter")
            screen = pane.wait_for("ready for you.")
            assert streamed in screen.splitlines()

            pane.type(f"/model {fake.url} m1")
            pane.send("Enter")
            pane.wait_for(f"connected: m1 @ 127.0.0.1:{fake.port}")
            pane.type("hello?")
            pane.send("Enter")
            pane.wait_for("Hello from the server model.")
            pane.type("/quit")
            pane.send("Enter")
            deadline = time.monotonic() + 10
            while pane.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    assert fake.chat_requests[-1].body["model"] == "m1"
    records = [json.loads(line) for line in next((tmp_path / "out").glob("*/session.jsonl")).read_text().splitlines()]
    params = {r["image"]["handle"]: r["image"]["params"] for r in records if r["type"] == "image"}
    assert params["img2"]["low"] == 50 and params["img3"]["direction"] == "vertical"


def _index_ids(tmp_path: Path) -> list[str]:
    index = tmp_path / "data" / "vchat" / "sessions.jsonl"
    return [json.loads(line)["id"] for line in index.read_text().splitlines()] if index.exists() else []


@pytest.mark.parametrize("way", ["ctrl-d", "/quit", "unanswered message then ctrl-d", "answered message"])
@pytest.mark.slow
def test_a_chat_where_nothing_happened_leaves_no_session(tmp_path: Path, way: str) -> None:
    """Start the chat and quit: no session folder and no index entry for `--resume` to pick as the latest."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps([answer("Hello.")]))
    # Port 9 (discard) has no server: the message fails at the first request.
    backend = ["--base-url", "http://127.0.0.1:9/v1", "-m", "m"] if "unanswered" in way else []
    name = f"vchat-test-{uuid.uuid4().hex[:8]}"
    pane = start(name, tmp_path, backend or ["--llm", f"scripted:{script}", "--preview", "none"])
    try:
        pane.wait_for("/help for commands")
        if "message" in way:
            pane.type("hi")
            pane.send("Enter")
            pane.wait_for("cannot reach" if "unanswered" in way else "Hello.")
        time.sleep(0.5)  # the prompt reads keys once drawn; a Ctrl-D sent before it is lost
        if way == "/quit":
            pane.type("/quit")
            pane.send("Enter")
        else:
            pane.send("C-d")
        deadline = time.monotonic() + 15
        while pane.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pane.alive(), pane.screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    folders = sorted((tmp_path / "out").glob("*/session.jsonl"))
    if way == "answered message":  # the control: a chat in which something happened is kept and listed
        assert len(folders) == 1 and _index_ids(tmp_path) == [folders[0].parent.name]
    else:
        assert folders == [] and _index_ids(tmp_path) == []
