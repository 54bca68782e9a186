"""`vchat batch`'s manifest under hostile names, planted files, torn lines, a full disk and a second batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import act, answer, write_photo

from vchat.batch.manifest import read_manifest

TRACEBACK = "Traceback (most recent call last)"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"), NO_COLOR="1")
    return env


def _cmd(*args: str | bytes) -> list[str | bytes]:
    return [sys.executable, "-m", "vchat", "batch", *args]


def batch(tmp_path: Path, *args: str | bytes, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        _cmd(*args), capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=timeout, errors="replace"
    )
    assert TRACEBACK not in out.stderr, out.stderr
    return out


def lines(manifest: Path) -> list[dict[str, object]]:
    """Every parseable record, in order (read here without vchat's reader, as a script would)."""
    found = []
    for raw in manifest.read_bytes().splitlines():
        try:
            found.append(json.loads(raw))
        except ValueError:
            continue
    return found


def test_non_utf8_file_name_is_recorded_and_resumed(tmp_path: Path) -> None:
    write_photo(tmp_path / "in", "a.png")
    bad = os.fsencode(tmp_path / "in") + b"/bad\xff\x1b[2J.png"
    shutil.copy(tmp_path / "in" / "a.png", bad)
    write_photo(tmp_path / "in", "z\u009b2J\u202eevil.png", seed=2)  # C1 CSI and a bidi override: valid UTF-8
    out = batch(tmp_path, "--tool", "flip_image", "in", "--out", "o", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["done"] == 3
    records = read_manifest(tmp_path / "o" / "manifest.jsonl")
    # Lossless: the record's input is exactly the name Python gives the file (undecodable bytes as surrogates).
    assert os.fsdecode(bad) in records
    assert all(r["status"] == "done" for r in records.values())
    # Escaped on disk: neither the raw byte nor the escape character reaches the file.
    raw = (tmp_path / "o" / "manifest.jsonl").read_bytes()
    assert b"\xff" not in raw and b"\x1b" not in raw and b"\xc2\x9b" not in raw and b"\xe2\x80\xae" not in raw
    assert str(tmp_path / "in" / "z\u009b2J\u202eevil.png") in records
    again = batch(tmp_path, "--tool", "flip_image", "in", "--out", "o", "--resume", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["skipped"] == 3


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")


def test_full_disk_is_a_summary_not_a_traceback(tmp_path: Path) -> None:
    for i in range(3):
        write_photo(tmp_path / "in", f"p{i}.png", seed=i)
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "64k")
    try:
        (disk / "o").mkdir()
        # Fill the disk to the last block, so the outputs and then the manifest hit ENOSPC.
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        out = batch(tmp_path, "--tool", "flip_image", "in", "--out", str(disk / "o"), "--json")
        assert out.returncode == 1
        summary = json.loads(out.stdout)
        assert "No space left on device" in summary["stopped"] and "--resume" in summary["stopped"]
        # Room again: --resume finishes every input, each recorded done once.
        (disk / "filler").unlink()
        again = batch(tmp_path, "--tool", "flip_image", "in", "--out", str(disk / "o"), "--resume", "--json")
        assert again.returncode == 0, again.stderr
        done = [r for r in lines(disk / "o" / "manifest.jsonl") if r["status"] == "done"]
        assert sorted(str(r["input"]) for r in done) == sorted(str(tmp_path / "in" / f"p{i}.png") for i in range(3))
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_input_folder_named_like_the_manifest(tmp_path: Path) -> None:
    write_photo(tmp_path / "in" / "manifest.jsonl", "a.png")
    write_photo(tmp_path / "in", "b.png", seed=1)
    for resume in ([], ["--resume"]):
        out = batch(tmp_path, "--tool", "flip_image", "in", "--out", "o", "--json", *resume)
        assert out.returncode == 0, out.stderr
    assert (tmp_path / "o" / "manifest.jsonl").is_file()
    records = read_manifest(tmp_path / "o" / "manifest.jsonl")
    assert records[str(tmp_path / "in" / "manifest.jsonl" / "a.png")]["outputs"] == ["_manifest.jsonl/a.png"]
    assert len(lines(tmp_path / "o" / "manifest.jsonl")) == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"outputs": 5},
        {"outputs": [5]},
        {"outputs": None, "seconds": "x"},
        {"status": ["done"]},
        {"seed": "1"},
        {"text": {"a": 1}},
        {"outputs": ["../passwd.png"]},
        {"outputs": ["/etc/passwd"]},
    ],
)
def test_wrong_types_and_escaping_outputs_on_resume(tmp_path: Path, bad: dict[str, object]) -> None:
    photo = write_photo(tmp_path / "in", "p.png")
    (tmp_path / "o").mkdir()
    record = {"input": str(photo), "status": "done", "outputs": ["p.png"], "seconds": 0.1, "seed": None, **bad}
    (tmp_path / "o" / "manifest.jsonl").write_text(json.dumps(record) + "\n")
    # A whole PNG where the escaping path leads: following it would count the input as done.
    write_photo(tmp_path, "passwd.png")
    out = batch(tmp_path, "--tool", "flip_image", "in", "--out", "o", "--resume", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["done"] == 1  # the bad record does not count: the image is redone
    assert read_manifest(tmp_path / "o" / "manifest.jsonl")[str(photo)]["outputs"] == ["p.png"]


@pytest.mark.slow
def test_escaping_output_is_not_done(tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "in", "p.png")
    outside = write_photo(tmp_path, "outside.png")
    (tmp_path / "o" / "sub").mkdir(parents=True)
    (tmp_path / "o" / "link.png").symlink_to(outside)
    for output in ("../outside.png", "sub/../../outside.png", "link.png"):
        record = {"input": str(photo), "status": "done", "outputs": [output], "seconds": 0.1, "seed": None}
        (tmp_path / "o" / "manifest.jsonl").write_text(json.dumps(record) + "\n")
        out = batch(tmp_path, "--tool", "flip_image", "in", "--out", "o", "--resume", "--json")
        assert json.loads(out.stdout)["done"] == 1, output


@pytest.mark.parametrize("plant", ["symlink", "fifo", "folder"])
def test_planted_manifest_is_refused_in_one_line(tmp_path: Path, plant: str) -> None:
    write_photo(tmp_path / "in", "p.png")
    (tmp_path / "o").mkdir()
    manifest = tmp_path / "o" / "manifest.jsonl"
    target = tmp_path / "target.txt"
    target.write_text("keep\n")
    if plant == "symlink":
        manifest.symlink_to(target)
    elif plant == "fifo":
        os.mkfifo(manifest)
    else:
        manifest.mkdir()
    for resume in ([], ["--resume"]):
        out = batch(tmp_path, "--tool", "flip_image", "in", "--out", "o", *resume, timeout=30)
        assert out.returncode == 1
        (line,) = out.stderr.strip().splitlines()
        assert "manifest.jsonl" in line and "choose another --out" in line
    assert target.read_text() == "keep\n"
    assert not (tmp_path / "o" / "p.png").exists()  # refused before any work


def test_torn_last_line_is_ended_before_the_next_record(tmp_path: Path) -> None:
    write_photo(tmp_path / "in", "a.png")
    assert batch(tmp_path, "--tool", "flip_image", "in", "--out", "o").returncode == 0
    manifest = tmp_path / "o" / "manifest.jsonl"
    with open(manifest, "ab") as fh:
        fh.write(b'{"input": "/killed/mid-wri')  # a record cut by SIGKILL
    write_photo(tmp_path / "in", "b.png", seed=1)
    for _ in range(2):  # the second resume finds b done: the record written after the torn line is whole
        out = batch(tmp_path, "--tool", "flip_image", "in", "--out", "o", "--resume", "--json")
        assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["done"], summary["skipped"]) == (0, 2)
    assert [r["input"] for r in lines(manifest)] == [str(tmp_path / "in" / n) for n in ("a.png", "b.png")]


def _agent_script(path: Path, images: int, delay: float = 0.0) -> Path:
    replies = []
    for _ in range(images):
        replies.append({"reply": act("flip_image", "img1"), "delay": delay})
        replies.append({"reply": answer("Flipped: img2"), "delay": 0})
    path.write_text(json.dumps(replies))
    return path


@pytest.mark.slow
def test_two_batches_on_one_out_never_do_an_image_twice(tmp_path: Path) -> None:
    count = 20
    for i in range(count):
        write_photo(tmp_path / "in", f"p{i:02d}.png", seed=i)
    script = _agent_script(tmp_path / "slow.json", count, delay=0.05)
    args = ("flip it", "in", "--out", "o", "--resume", "--json", "--llm", f"scripted:{script}")
    procs = [
        subprocess.Popen(
            _cmd(*args), env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for _, _, stderr in results:
        assert TRACEBACK not in stderr
    codes = sorted(code for code, _, _ in results)
    records = lines(tmp_path / "o" / "manifest.jsonl")
    inputs = [r["input"] for r in records]
    assert sorted(inputs) == sorted(str(tmp_path / "in" / f"p{i:02d}.png") for i in range(count))  # each once
    assert all(r["status"] == "done" for r in records)
    # Either the second found the folder locked (one line, exit 1) or came after and had nothing left to do.
    if codes == [0, 1]:
        loser = next(stderr for code, _, stderr in results if code == 1)
        assert "another vchat batch is writing to" in loser
    else:
        assert codes == [0, 0]
        assert sorted(json.loads(out)["done"] for _, out, _ in results) == [0, count]


def test_agent_sessions_of_clashing_names_stay_apart(tmp_path: Path) -> None:
    first = write_photo(tmp_path / "in" / "x", "y.png", seed=1)
    second = write_photo(tmp_path / "in", "x__y.png", seed=2)
    script = _agent_script(tmp_path / "s.json", 2)
    out = batch(tmp_path, "flip it", str(first), str(second), "--out", "o", "--llm", f"scripted:{script}", "--json")
    assert out.returncode == 0, out.stderr
    records = read_manifest(tmp_path / "o" / "manifest.jsonl")
    sessions = {records[str(p)]["session"] for p in (first, second)}
    assert len(sessions) == 2
    for session in sessions:
        assert (tmp_path / "o" / str(session) / "session.jsonl").is_file()


def test_answer_without_an_image_is_not_done(tmp_path: Path) -> None:
    write_photo(tmp_path / "in", "p.png")
    script = tmp_path / "s.json"
    script.write_text(json.dumps([answer("I would rather not."), act("flip_image", "img1"), answer("img2")]))
    out = batch(tmp_path, "flip it", "in", "--out", "o", "--llm", f"scripted:{script}", "--json")
    assert out.returncode == 4
    (record,) = read_manifest(tmp_path / "o" / "manifest.jsonl").values()
    assert record["status"] == "failed" and record["outputs"] == [] and "without making an image" in record["error"]
    # Not done, so --resume tries it again (the script's next replies make the image).
    again = batch(tmp_path, "flip it", "in", "--out", "o", "--llm", f"scripted:{script}", "--resume", "--json")
    summary = json.loads(again.stdout)
    assert (summary["skipped"], summary["failed"]) == (0, 1)  # a new process replays the script from its start


def test_output_folder_planted_as_a_link_is_not_written_through(tmp_path: Path) -> None:
    write_photo(tmp_path / "in" / "sub", "a.png")
    write_photo(tmp_path / "in", "b.png", seed=1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "sub").symlink_to(elsewhere)
    out = batch(tmp_path, "--tool", "flip_image", "in", "--out", "o", "--json")
    assert out.returncode == 4
    assert list(elsewhere.iterdir()) == []
    records = read_manifest(tmp_path / "o" / "manifest.jsonl")
    assert records[str(tmp_path / "in" / "sub" / "a.png")]["status"] == "failed"
    assert records[str(tmp_path / "in" / "b.png")]["status"] == "done"


def test_agent_sessions_folder_planted_as_a_link_is_refused(tmp_path: Path) -> None:
    write_photo(tmp_path / "in", "p.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / ".sessions").symlink_to(elsewhere)
    script = _agent_script(tmp_path / "s.json", 1)
    out = batch(tmp_path, "flip it", "in", "--out", "o", "--llm", f"scripted:{script}")
    assert out.returncode == 1 and ".sessions" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert list(elsewhere.iterdir()) == []  # no session written through the link


def test_over_long_line_is_skipped_without_holding_it(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.jsonl"
    good = {"input": "/in/p.png", "status": "done", "outputs": ["p.png"], "seconds": 0.1, "seed": None}
    manifest.write_bytes(b"x" * (3 << 20) + b"\n" + json.dumps(good).encode() + b"\n")
    assert read_manifest(manifest) == {"/in/p.png": good}


# -- property: hostile file names through `vchat batch` and `--resume` ----------------------------------------

_NAME_BYTES = st.binary(min_size=1, max_size=240).filter(
    lambda b: b"/" not in b and b"\0" not in b and not b.startswith(b".")
)
_HOSTILE = st.one_of(
    _NAME_BYTES,
    st.sampled_from(
        [b"bad\xff", b"line\nbreak", b"\x1b]52;c;AAAA\x07", b"\xc2\x9b2J", b"\xe2\x80\xaeevil", b"x" * 240]
    ),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(_HOSTILE, min_size=1, max_size=4, unique=True), nested=st.booleans())
def test_hostile_names_one_record_each_nothing_escapes(tmp_path: Path, names: list[bytes], nested: bool) -> None:
    import gc
    import signal

    from typer.testing import CliRunner

    from vchat.cli.app import app

    root = Path(tempfile.mkdtemp(dir=tmp_path))
    source = write_photo(root, "seed.png", width=8, height=8).read_bytes()
    folder = os.fsencode(root / "in") + (b"/" + names[0][:100] if nested else b"")
    os.makedirs(folder, exist_ok=True)
    inputs = []
    for name in names:
        path = folder + b"/" + name[:240] + b".png"
        with open(path, "wb") as fh:
            fh.write(source)
        inputs.append(os.fsdecode(path))
    before = {p for p in root.rglob("*") if not p.is_relative_to(root / "o")}
    handler = signal.getsignal(signal.SIGTERM)
    try:
        for extra in ([], ["--resume"]):
            result = CliRunner().invoke(
                app, ["batch", "--tool", "flip_image", str(root / "in"), "--out", str(root / "o"), "--json", *extra]
            )
            assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
            assert result.exit_code == 0, result.output
            summary = json.loads(result.stdout.strip().splitlines()[-1])
            assert summary["done" if not extra else "skipped"] == len(inputs)
    finally:
        signal.signal(signal.SIGTERM, handler)
        gc.unfreeze()
    records = lines(root / "o" / "manifest.jsonl")
    assert sorted(r["input"] for r in records) == sorted(inputs)  # exactly one record per input, lossless
    out = (root / "o").resolve()
    for record in records:
        for output in record["outputs"]:  # type: ignore[union-attr]
            assert (root / "o" / output).resolve().is_relative_to(out) and (root / "o" / output).is_file()
    after = {p for p in root.rglob("*") if not p.is_relative_to(root / "o")}
    assert after == before  # nothing written outside the output folder
