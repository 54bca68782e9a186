"""`vchat bench --json`: model text escaped where a terminal would act on it, and failures reported on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers import answer
from tests.test_cli import vchat

HOSTILE = "done \u009b2J \u202eevil\u202c \x1b]52;c;QUJD\x07"


@pytest.mark.slow
def test_bench_json_escapes_c1_and_bidi_from_model_replies(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([answer(HOSTILE)]))
    out = vchat(tmp_path, "bench", "--llm", f"scripted:{script}", "--filter", "plain/caption", "--json")
    assert out.returncode == 0, out.stderr
    raw = out.stdout
    for char in ("\u009b", "\u202e", "\x1b", "\x07"):
        assert char not in raw, repr(char)
    assert HOSTILE in _strings(json.loads(raw))  # escaped, not lost: it parses back to the model's text


def _strings(data: object) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        data = list(data.values())
    return [s for item in data for s in _strings(item)] if isinstance(data, list) else []


def test_bench_json_failure_is_a_json_line_on_stdout(tmp_path: Path) -> None:
    out = vchat(tmp_path, "bench", "--llm", "none", "--json")
    assert out.returncode == 1
    assert "no language model" in json.loads(out.stdout)["error"]
    assert len(out.stderr.strip().splitlines()) == 1
