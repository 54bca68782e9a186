"""`vchat batch --ray` on a local Ray cluster (2 CPUs) started once for this module: same outputs and manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import write_photo

from vchat.batch.manifest import read_manifest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A 2-CPU Ray cluster in this process; `vchat batch --ray ADDRESS` connects to it as a client would."""
    ray.init(num_cpus=2, object_store_memory=80 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ray-in")
    for i in range(6):
        write_photo(folder / ("a" if i % 2 else "b"), f"p{i // 2}.png", seed=i, width=64 + 8 * i)
    (folder / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return folder


def _batch(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    full.update(XDG_CONFIG_HOME=str(folder / "cfg"), NO_COLOR="1", **env)
    cmd = [sys.executable, "-m", "vchat", "batch", "--tool", "canny_edges", *args, "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, env=full, cwd=folder, timeout=240)


def _same_as_local(inputs: Path, local: Path, remote: Path) -> None:
    mine, theirs = read_manifest(local / "manifest.jsonl"), read_manifest(remote / "manifest.jsonl")
    assert set(mine) == set(theirs) and len(mine) == 7
    for key, record in mine.items():
        other = theirs[key]
        for field in ("status", "outputs", "error", "seed", "text"):
            assert record.get(field) == other.get(field), (key, field)
        assert other["status"] == "failed" or other["worker"]  # which actor did it
    outputs = sorted(p.relative_to(local) for p in local.rglob("*.png"))
    assert outputs == sorted(p.relative_to(remote) for p in remote.rglob("*.png")) and len(outputs) == 6
    for relative in outputs:  # byte for byte: the same pixels and the same lineage chunk
        assert (local / relative).read_bytes() == (remote / relative).read_bytes()


@pytest.mark.slow
def test_ray_matches_the_local_run(cluster: str, inputs: Path, tmp_path: Path) -> None:
    local = _batch(tmp_path, str(inputs), "--out", str(tmp_path / "local"))
    assert local.returncode == 4, local.stderr  # the broken file
    remote = _batch(tmp_path, str(inputs), "--out", str(tmp_path / "ray"), "--ray", cluster, "--workers", "2")
    assert remote.returncode == 4, remote.stderr
    summary = json.loads(remote.stdout)
    assert (summary["done"], summary["failed"]) == (6, 1)
    _same_as_local(inputs, tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_ray_without_shared_storage_and_a_worker_that_dies(cluster: str, inputs: Path, tmp_path: Path) -> None:
    local = _batch(tmp_path, str(inputs), "--out", str(tmp_path / "local"))
    assert local.returncode == 4, local.stderr
    marker = tmp_path / "crashed"
    # Bytes travel through Ray both ways; the first shard kills its actor, which Ray restarts to retry it.
    remote = _batch(
        tmp_path,
        str(inputs),
        "--out",
        str(tmp_path / "ray"),
        "--ray",
        cluster,
        "--workers",
        "2",
        VCHAT_RAY_SHIP_BYTES="1",
        VCHAT_BATCH_CRASH_ONCE=str(marker),
    )
    assert marker.is_file(), "no worker was killed"
    assert remote.returncode == 4, remote.stderr
    _same_as_local(inputs, tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
@pytest.mark.parametrize("ship", ["0", "1"])
def test_ray_records_a_non_utf8_name_and_resumes_it(cluster: str, tmp_path: Path, ship: str) -> None:
    folder = tmp_path / "in"
    write_photo(folder, "ok.png")
    bad = os.fsencode(folder) + b"/bad\xff.png"
    with open(bad, "wb") as fh:
        fh.write((folder / "ok.png").read_bytes())
    args = [str(folder), "--out", str(tmp_path / "o"), "--ray", cluster, "--workers", "1"]
    first = _batch(tmp_path, *args, VCHAT_RAY_SHIP_BYTES=ship)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["done"] == 2
    records = read_manifest(tmp_path / "o" / "manifest.jsonl")
    assert records[os.fsdecode(bad)]["status"] == "done"
    again = _batch(tmp_path, *args, "--resume", VCHAT_RAY_SHIP_BYTES=ship)
    assert again.returncode == 0 and json.loads(again.stdout)["skipped"] == 2, again.stderr
