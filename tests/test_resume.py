"""A `vchat run` killed with SIGKILL mid-turn keeps every finished image and step; resume goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import act, answer, write_photo

from vchat.store.transcript import read_records


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"), VCHAT_OUT=str(tmp_path / "out")
    )
    return env


@pytest.mark.slow
def test_sigkill_mid_turn_then_resume(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    script = tmp_path / "slow.json"
    # Two tool calls finish, then the model "thinks" for a minute: the kill lands there.
    script.write_text(
        json.dumps(
            [
                act("canny_edges", "img1"),
                act("flip_image", "img2"),
                {"reply": answer("done"), "delay": 60},
            ]
        )
    )
    cmd = [sys.executable, "-m", "vchat", "run", "edges then flip", "-i", str(photo), "--llm", f"scripted:{script}"]
    proc = subprocess.Popen(cmd, env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    transcript: Path | None = None
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            found = list((tmp_path / "out").glob("*/session.jsonl"))
            if found:
                transcript = found[0]
                records, _ = read_records(transcript)
                if sum(1 for r in records if r.get("kind") == "observation") == 2:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the two tool steps never reached the transcript")
        assert proc.poll() is None, "vchat ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert transcript is not None
    folder = transcript.parent
    assert (folder / "img2-canny_edges.png").is_file()
    assert (folder / "img3-flip_image.png").is_file()
    assert not list(folder.glob("*.tmp"))
    records, warning = read_records(transcript)
    assert warning is None
    assert [r["kind"] for r in records if r["type"] == "step"] == ["action", "observation", "action", "observation"]

    # Resume: the images and their lineage are back and the session goes on.
    script2 = tmp_path / "next.txt"
    script2.write_text(act("grayscale_image", "img3") + "\n---\n" + answer("Gray copy: img4"))
    out = subprocess.run(
        [sys.executable, "-m", "vchat", "run", "make it gray", "--resume", "--llm", f"scripted:{script2}", "--json"],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["session"] == folder.name
    assert [i["handle"] for i in data["images"]] == ["img1", "img2", "img3", "img4"]
    assert data["images"][3]["parents"] == ["img3"]

    # The killed turn is in the model's history: what was asked, what it made, that it was cut short.
    from vchat.config import Settings
    from vchat.llm.scripted import ScriptedLLM
    from vchat.resume import resume_session
    from vchat.tools.registry import all_tools

    llm = ScriptedLLM([answer("ok")])
    resumed, _ = resume_session(Settings(out_dir=tmp_path / "out"), all_tools(), llm)
    list(resumed.turn("what did you make?"))
    sent = [m["content"] for m in llm.calls[0]]
    killed = next(i for i, text in enumerate(sent) if isinstance(text, str) and text.startswith("edges then flip"))
    assert sent[killed + 1] == (
        "Tool steps:\nimg2 = canny_edges(img1)\nimg3 = flip_image(img2)\n"
        "Thought: Do I need to use a tool? No\nAI: (interrupted)"
    )
    assert sent[killed + 2].startswith("make it gray")  # the turn after the resume follows it
    resumed.close()


def test_resume_builds_the_session_once_with_the_rebuilt_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """resume_session replays the transcript first, then constructs one Session from what it rebuilt."""
    from vchat.config import Settings
    from vchat.llm.scripted import ScriptedLLM
    from vchat.resume import resume_session
    from vchat.session import Session
    from vchat.tools.registry import all_tools

    settings = Settings(out_dir=tmp_path / "out")
    first = Session(settings, all_tools(), ScriptedLLM([act("flip_image", "img1"), answer("flipped: img2")]))
    first.attach(write_photo(tmp_path))
    list(first.turn("flip it"))
    first.close()

    built: list[tuple[Session, Any]] = []
    original = Session.__init__

    def counting(self: Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        built.append((self, kwargs.get("reopened")))

    monkeypatch.setattr(Session, "__init__", counting)
    resumed, warning = resume_session(settings, all_tools(), None, first.id)
    assert len(built) == 1 and built[0][0] is resumed and warning is None
    reopened = built[0][1]  # the parts were rebuilt first and handed in, not overwritten afterwards
    assert reopened is not None and resumed.store is reopened.store and resumed.folder == reopened.folder
    assert resumed.folder == first.folder and resumed.id == first.id
    assert [ref.handle for ref in resumed.store] == ["img1", "img2"]
    assert [turn.ending for turn in resumed.turns] == ["final"] and resumed.history
    resumed.close()


def test_a_resumed_session_is_locked_until_closed_and_a_listing_does_not_lock(tmp_path: Path) -> None:
    from vchat.config import Settings
    from vchat.errors import VchatError
    from vchat.resume import resume_session
    from vchat.session import Session
    from vchat.tools.registry import all_tools

    settings = Settings(out_dir=tmp_path / "out")
    first = Session(settings, all_tools())
    first.attach(write_photo(tmp_path))
    first.close()
    held, _ = resume_session(settings, all_tools(), None, first.id)
    listed, _ = resume_session(settings, all_tools(), None, first.id, mark=False)  # `vchat images` reads only
    assert [ref.handle for ref in listed.store] == ["img1"]
    with pytest.raises(VchatError):
        resume_session(settings, all_tools(), None, first.id)
    held.close()
    again, _ = resume_session(settings, all_tools(), None, first.id)
    again.close()
