"""The sessions index under concurrent vchat processes (every add kept, every removal final), and planted in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
