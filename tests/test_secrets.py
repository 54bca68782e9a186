"""The API key never shows up in transcripts, --json output, error messages or listings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.fake_openai import FakeOpenAI, Fault
from tests.helpers import act, answer, write_photo
from tests.test_cli import vchat

SECRET = "sk-test-DO-NOT-LEAK-4f1a2b3c"


def _all_output(tmp_path: Path, *outs: object) -> str:
    texts = [getattr(o, "stdout", "") + getattr(o, "stderr", "") for o in outs]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(texts)


@pytest.mark.parametrize("fault", [None, "401", "500"])
@pytest.mark.slow
def test_key_never_leaks(tmp_path: Path, fault: str | None) -> None:
    photo = write_photo(tmp_path)
    items: list[object] = [act("canny_edges", "img1"), answer("img2")]
    if fault == "401":
        items = [Fault.unauthorized()]
    elif fault == "500":
        items = [Fault.server_error(), Fault.server_error(), Fault.server_error(), Fault.server_error()]
    with FakeOpenAI(items) as server:  # type: ignore[arg-type]
        run = vchat(
            tmp_path,
            "run",
            "edges",
            "-i",
            str(photo),
            "--base-url",
            server.url,
            "--json",
            "--verbose",
            OPENAI_API_KEY=SECRET,
        )
        seen_key = server.chat_requests[0].header("authorization") if server.chat_requests else None
        listing = vchat(tmp_path, "sessions")
        images = vchat(tmp_path, "images")
    assert seen_key == f"Bearer {SECRET}"  # the key was really in use
    json.loads(run.stdout)
    assert SECRET not in _all_output(tmp_path, run, listing, images)
