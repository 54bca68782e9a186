"""The REPL in a real tmux: /undo and /model across --resume, the seed on an 80-column result line, previews in tmux.

Each test runs its own tmux server (`tmux -L NAME`), so setting `allow-passthrough` never touches another
test's (or the user's) tmux. vchat inside is told it runs in that tmux by TMUX and TERM, as tmux would.
"""

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
from tests.fake_openai import FakeOpenAI
from tests.helpers import answer, write_photo

from vchat.ui.kitty_unicode import PLACEHOLDER

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
    pytest.mark.slow,
]


class Tmux:
    """One private tmux server with one session whose pane runs what `run` starts."""

    def __init__(self, width: int = 150, height: int = 50) -> None:
        self.socket = f"vchat-test-{uuid.uuid4().hex[:8]}"
        self.target = "main"
        self.tmux("new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height), "sleep 600")
        self.path = self.tmux("display-message", "-p", "#{socket_path}").strip()

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True)
        return done.stdout

    def run(self, tmp_path: Path, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        env = {
            "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "VCHAT_OUT": str(tmp_path / "out"),
            "TERM": "tmux-256color",
            "TMUX": f"{self.path},0,0",  # what tmux sets: its own probes must reach this server
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
            **(extra_env or {}),
        }
        words = ["env", "-i", *(f"{k}={shlex.quote(v)}" for k, v in env.items())]
        command = " ".join([*words, shlex.quote(sys.executable), "-m", "vchat", *(shlex.quote(a) for a in args)])
        self.tmux("respawn-pane", "-k", "-t", self.target, "-c", str(tmp_path), command)
        self.tmux("clear-history", "-t", self.target)  # what a previous run printed must not satisfy wait_for

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.target, "-l", text)
        self.tmux("send-keys", "-t", self.target, "Enter")

    def screen(self, *, joined: bool = True) -> str:
        return self.tmux("capture-pane", "-p", *(["-J"] if joined else []), "-S", "-200", "-t", self.target)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; screen:\n{self.screen()}")

    def quit(self) -> None:
        """/quit, then wait until vchat has exited (its lock released, its transcript synced)."""
        self.type("/quit")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.tmux("display-message", "-p", "-t", self.target, "#{pane_dead}").strip() == "1":
                return
            time.sleep(0.1)
        raise AssertionError(f"vchat did not exit; screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    server = Tmux()
    server.tmux("set", "-g", "remain-on-exit", "on")
    try:
        yield server
    finally:
        server.close()


def test_undo_stays_undone_after_resume(tmux: Tmux, tmp_path: Path) -> None:
    replies = [answer("Noted alpha."), answer("Noted beta."), answer("Noted gamma.")]
    with FakeOpenAI(replies, models=["m1"]) as fake:
        server = ["--base-url", fake.url, "--model", "m1", "--preview", "none"]
        tmux.run(tmp_path, server)
        tmux.wait_for("/help for commands")
        tmux.type("remember alpha")
        tmux.wait_for("Noted alpha.")
        tmux.type("remember beta")
        tmux.wait_for("Noted beta.")
        tmux.type("/undo")
        tmux.wait_for("forgot the last exchange")
        tmux.quit()
        tmux.run(tmp_path, [*server, "--resume"])
        tmux.wait_for("1 turn")
        tmux.type("what do you remember?")
        tmux.wait_for("Noted gamma.")
        tmux.quit()
        sent = json.dumps(fake.chat_requests[-1].body["messages"])
    assert "remember alpha" in sent and "remember beta" not in sent


def test_model_switch_is_kept_after_resume(tmux: Tmux, tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([answer("Scripted hello.")]))
    config = {"VCHAT_LLM": f"scripted:{script}", "VCHAT_PREVIEW": "none"}  # the setting a restart comes back with
    with FakeOpenAI([answer("Server hello."), answer("Server again.")], models=["m1"]) as fake:
        tmux.run(tmp_path, [], config)
        tmux.wait_for("/help for commands")
        tmux.type("hi")
        tmux.wait_for("Scripted hello.")
        tmux.type(f"/model {fake.url} m1")
        tmux.wait_for("connected: m1")
        tmux.type("hi again")
        tmux.wait_for("Server hello.")
        tmux.quit()
        tmux.run(tmp_path, ["--resume"], config)
        tmux.wait_for("resumed session")
        screen = tmux.wait_for("/help for commands")
        assert f"vchat — m1 @ 127.0.0.1:{fake.port}" in screen
        tmux.type("still there?")
        tmux.wait_for("Server again.")
        tmux.quit()
    assert fake.chat_requests[-1].body["model"] == "m1"


def test_result_line_keeps_its_seed_at_80_columns(tmp_path: Path, hub_cache: Path) -> None:
    server = Tmux(width=80, height=40)
    try:
        env = {"HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        server.run(tmp_path, ["--llm", "none", "--preview", "none"], env)
        server.wait_for("/help for commands")
        prompt = "a red car parked by a long stone wall under a grey winter sky with snow falling on the old town"
        server.type(f"/tool generate_image {prompt} steps=2 width=64 height=64 seed=4266540312")
        screen = server.wait_for("img1-generate_image.png", timeout=120)
        result = screen[screen.index("Generated a 64x64 image") : screen.index("img1-generate_image.png")]
        assert "seed 4266540312" in result, screen  # was cut to "seed" / "42665403…" before
        assert max(len(line) for line in server.screen(joined=False).splitlines()) <= 80
    finally:
        server.close()


def test_preview_in_tmux_without_passthrough_falls_back_and_says_how(tmux: Tmux, tmp_path: Path) -> None:
    photo = write_photo(tmp_path, "photo.png")
    tmux.tmux("set", "-g", "allow-passthrough", "off")
    tmux.run(tmp_path, ["--llm", "none", "-i", str(photo)], {"KITTY_WINDOW_ID": "1"})
    tmux.wait_for("allow-passthrough on")
    screen = tmux.wait_for("▀")  # a visible half-block preview
    assert screen.count("allow-passthrough on") == 1
    assert screen.index("allow-passthrough on") < screen.index("▀")  # said before the first preview
    tmux.type(f"/attach {photo}")
    screen = tmux.wait_for("attached img2")
    time.sleep(0.5)
    assert tmux.screen().count("allow-passthrough on") == 1, "the hint is said once"


def test_preview_in_tmux_with_passthrough_uses_kitty_placeholders(tmux: Tmux, tmp_path: Path) -> None:
    photo = write_photo(tmp_path, "photo.png")
    tmux.tmux("set", "-g", "allow-passthrough", "on")
    tmux.run(tmp_path, ["--llm", "none", "-i", str(photo)], {"KITTY_WINDOW_ID": "1"})
    screen = tmux.wait_for("attached img1")
    tmux.type("/preview auto")
    screen = tmux.wait_for("previews: kitty")
    assert "tmux passthrough, Unicode placeholders" in screen
    assert "allow-passthrough" not in screen and "▀" not in screen
    assert PLACEHOLDER in screen, "tmux keeps the placeholder cells as text"
