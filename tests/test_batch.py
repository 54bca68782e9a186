"""`vchat batch` as scripts run it: mixed good and corrupt inputs, names, manifest, resume after SIGKILL, agent mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.helpers import act, answer, write_photo

from vchat.batch.inputs import expand, name_items
from vchat.batch.manifest import read_manifest
from vchat.store.refs import read_png_record


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"), NO_COLOR="1")
    return env


def batch(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vchat", "batch", *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=timeout,
    )


def photos(folder: Path) -> list[Path]:
    """Two folders with an equal file name, a JPEG, and two broken files."""
    made = [
        write_photo(folder / "a", "cat.png", seed=1),
        write_photo(folder / "b", "cat.png", seed=2, width=80),
        write_photo(folder / "b", "dog.png", seed=3),
    ]
    Image.open(made[0]).convert("RGB").save(folder / "a" / "sky.jpg", quality=90)
    (folder / "a" / "empty.png").write_bytes(b"")
    (folder / "b" / "torn.png").write_bytes(made[1].read_bytes()[:200])
    return made


@pytest.mark.slow
def test_mixed_good_and_corrupt_inputs(tmp_path: Path) -> None:
    photos(tmp_path / "in")
    out = batch(tmp_path, "--tool", "canny_edges", "in", "--out", "edges", "--arg", "low=50", "--json")
    assert out.returncode == 4, out.stderr  # some images failed
    summary = json.loads(out.stdout)
    assert (summary["total"], summary["done"], summary["failed"]) == (6, 4, 2)
    records = read_manifest(tmp_path / "edges" / "manifest.jsonl")
    by_name = {Path(k).relative_to(tmp_path / "in").as_posix(): v for k, v in records.items()}
    assert by_name["a/empty.png"]["status"] == "failed" and "empty file" in by_name["a/empty.png"]["error"]
    assert by_name["b/torn.png"]["status"] == "failed" and "damaged or truncated" in by_name["b/torn.png"]["error"]
    # Outputs mirror the input folders: equal names in different folders never clash.
    assert by_name["a/cat.png"]["outputs"] == ["a/cat.png"]
    assert by_name["b/cat.png"]["outputs"] == ["b/cat.png"]
    assert by_name["a/sky.jpg"]["outputs"] == ["a/sky.png"]
    for record in records.values():
        assert set(record) >= {"input", "outputs", "status", "error", "seconds", "seed"}
    # Each output is the tool's result on its own input, with its lineage in the PNG chunk.
    with Image.open(tmp_path / "edges" / "b" / "cat.png") as img:
        assert img.size == (80, 48)
    chunk = read_png_record(tmp_path / "edges" / "a" / "cat.png")
    assert chunk is not None
    assert chunk["tool"] == "canny_edges" and chunk["params"] == {"low": 50, "high": 200}
    assert chunk["sources"] == {"img1": str(tmp_path / "in" / "a" / "cat.png")}
    assert chunk["parents"] == ["img1"]
    # A second run without --resume refuses to mix two batches in one manifest.
    again = batch(tmp_path, "--tool", "canny_edges", "in", "--out", "edges")
    assert again.returncode == 1 and "--resume" in again.stderr, again.stderr


def test_all_good_exit_0_and_summary_line(tmp_path: Path) -> None:
    for i in range(3):
        write_photo(tmp_path / "in", f"p{i}.png", seed=i)
    out = batch(tmp_path, "--tool", "flip_image", str(tmp_path / "in" / "*.png"), "--out", "flipped")
    assert out.returncode == 0, out.stderr
    assert "batch: 3 done, 0 failed" in out.stderr
    original = np.asarray(Image.open(tmp_path / "in" / "p1.png"))
    flipped = np.asarray(Image.open(tmp_path / "flipped" / "p1.png").convert("RGB"))
    assert flipped.shape == original.shape and not np.array_equal(flipped, original)


@pytest.mark.slow
def test_resume_skips_what_is_done(tmp_path: Path) -> None:
    for i in range(4):
        write_photo(tmp_path / "in", f"p{i}.png", seed=i)
    assert batch(tmp_path, "--tool", "canny_edges", "in", "--out", "e").returncode == 0
    kept = (tmp_path / "e" / "p1.png").stat().st_mtime_ns
    (tmp_path / "e" / "p2.png").unlink()  # an output that went missing is done again
    cut = tmp_path / "e" / "p3.png"
    cut.write_bytes(cut.read_bytes()[:100])  # and one cut short (power loss before it reached the disk)
    write_photo(tmp_path / "in", "p4.png", seed=4)  # and a new input is picked up
    out = batch(tmp_path, "--tool", "canny_edges", "in", "--out", "e", "--resume", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["done"], summary["skipped"]) == (3, 2)
    with Image.open(cut) as img:
        img.load()
    assert (tmp_path / "e" / "p2.png").is_file() and (tmp_path / "e" / "p4.png").is_file()
    assert (tmp_path / "e" / "p1.png").stat().st_mtime_ns == kept  # done before: not written again
    lines = (tmp_path / "e" / "manifest.jsonl").read_text().splitlines()
    inputs = [json.loads(line)["input"] for line in lines]
    assert inputs.count(str(tmp_path / "in" / "p1.png")) == 1
    assert inputs.count(str(tmp_path / "in" / "p2.png")) == 2


def _agent_script(path: Path, images: int, delay: float = 0.0) -> Path:
    replies = []
    for _ in range(images):
        replies.append({"reply": act("canny_edges", "img1"), "delay": delay})
        replies.append({"reply": answer("Here are the edges: img2"), "delay": 0})
    path.write_text(json.dumps(replies))
    return path


def test_agent_mode_one_session_per_image(tmp_path: Path) -> None:
    made = photos(tmp_path / "in")
    script = _agent_script(tmp_path / "script.json", 3)
    out = batch(tmp_path, "find the edges", *map(str, made), "--out", "o", "--llm", f"scripted:{script}", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["done"] == 3
    records = read_manifest(tmp_path / "o" / "manifest.jsonl")
    record = records[str(made[1])]
    assert record["outputs"] == ["b/cat.png"] and record["text"] == "Here are the edges: img2"
    # Its own session: the transcript, the attached copy and the tool's output, under the output folder.
    session = tmp_path / "o" / record["session"]
    assert (session / "session.jsonl").is_file() and (session / "img2-canny_edges.png").is_file()
    assert np.array_equal(
        np.asarray(Image.open(session / "img2-canny_edges.png")), np.asarray(Image.open(tmp_path / "o" / "b/cat.png"))
    )


def test_agent_mode_step_cap_fails_that_image(tmp_path: Path) -> None:
    write_photo(tmp_path / "in", "p.png")
    script = tmp_path / "loop.json"
    script.write_text(json.dumps([act("flip_image", "img1")] * 4))
    out = batch(tmp_path, "flip forever", "in", "--out", "o", "--llm", f"scripted:{script}", "--max-steps", "2")
    assert out.returncode == 4
    (record,) = read_manifest(tmp_path / "o" / "manifest.jsonl").values()
    assert record["status"] == "failed" and "2" in record["error"]


@pytest.mark.slow
def test_resume_after_sigkill_mid_batch(tmp_path: Path) -> None:
    inputs = [write_photo(tmp_path / "in", f"p{i:02d}.png", seed=i) for i in range(8)]
    # Each image's model reply takes a moment, so the kill lands in the middle of the batch.
    script = _agent_script(tmp_path / "slow.json", 8, delay=0.4)
    cmd = [sys.executable, "-m", "vchat", "batch", "edges", "in", "--out", "o", "--llm", f"scripted:{script}"]
    proc = subprocess.Popen(cmd, env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    manifest = tmp_path / "o" / "manifest.jsonl"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if manifest.is_file() and len(manifest.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the batch never got going")
        assert proc.poll() is None, "the batch ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = read_manifest(manifest)
    assert 3 <= len(before) < 8
    out = batch(tmp_path, "edges", "in", "--out", "o", "--llm", f"scripted:{script}", "--resume", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["skipped"] == len(before) and summary["done"] == 8 - len(before)
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    # Nothing redone, nothing lost: every input done exactly once, every output whole.
    assert sorted(r["input"] for r in lines) == sorted(str(p) for p in inputs)
    assert all(r["status"] == "done" for r in lines)
    for path in inputs:
        with Image.open(tmp_path / "o" / f"{path.stem}.png") as img:
            img.load()
    assert not list((tmp_path / "o").rglob("*.tmp"))


@pytest.mark.slow
def test_bad_usage_is_one_line(tmp_path: Path) -> None:
    write_photo(tmp_path / "in", "p.png")
    cases = [  # a bad command line exits 2, inputs that are not there 1
        (["--tool", "nope", "in", "--out", "o"], "unknown tool 'nope'", 2),
        (["--tool", "canny_edges", "in"], "missing --out", 2),
        (["--tool", "canny_edges", "in", "--out", "o", "--arg", "lo=1"], "has no input 'lo'", 2),
        (["--tool", "canny_edges", "in", "--out", "o", "--arg", "lo"], "expected KEY=VALUE", 2),
        (["--tool", "generate_image", "in", "--out", "o"], "takes no image", 2),
        (["--tool", "canny_edges", "nothere/", "--out", "o"], "nothere/: no such file or folder", 1),
    ]
    for args, message, code in cases:
        out = batch(tmp_path, *args)
        assert out.returncode == code, (args, out.stderr)
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "o").exists()


def test_names_mirror_folders_and_keep_suffix_on_stem_clash(tmp_path: Path) -> None:
    for rel in ["x/a.png", "x/a.jpg", "y/a.png", "y/z/b.webp"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    items = name_items(expand([str(tmp_path / "x"), str(tmp_path / "y")]))
    assert [item.name for item in items] == ["x/a.jpg", "x/a.png", "y/a", "y/z/b"]


@pytest.mark.parametrize("argv", [["batch", "--ray", "in"], ["batch", "--ray"]])
def test_bare_ray_means_auto(argv: list[str]) -> None:
    from vchat.cli.batch import batch_argv

    assert batch_argv(argv)[:3] == ["batch", "--ray", "auto"]
    assert batch_argv(["batch", "--ray", "10.0.0.1:6379", "in"])[2] == "10.0.0.1:6379"


def test_failure_lines_show_bracketed_text_whole(tmp_path: Path) -> None:
    """A failure naming `[models]` or a file `copy [draft].png` keeps its brackets (they were read as markup)."""
    write_photo(tmp_path / "in", "good.png")
    (tmp_path / "in" / "copy [draft].png").write_text("not an image")
    out = batch(tmp_path, "--tool", "flip_image", "in", "--out", "o")
    assert out.returncode == 4, out.stderr
    failed = [line for line in out.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "copy [draft].png" in failed[0], out.stderr
