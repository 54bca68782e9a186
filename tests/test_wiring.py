"""Session wiring: caption-on-attach is off by default and captions attached images when on."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import write_photo

from vchat.cli.wiring import build_session
from vchat.config import Settings


def test_attach_costs_nothing_by_default(tmp_path: Path) -> None:
    session, _ = build_session(Settings(out_dir=tmp_path / "out", llm="none"), llm="skip")
    ref = session.attach(write_photo(tmp_path))
    assert ref.caption is None
    assert session._models is None  # no model manager was even created


@pytest.mark.slow
def test_caption_on_attach_uses_blip(tmp_path: Path, hub_cache: Path) -> None:
    settings = Settings(out_dir=tmp_path / "out", llm="none", caption_on_attach=True)
    session, _ = build_session(settings, llm="skip")
    ref = session.attach(write_photo(tmp_path))
    assert ref.note is None, ref.note
    assert session.models.stats.loads >= 1  # BLIP really ran
    assert ref.caption is None or (ref.caption.strip() and "\n" not in ref.caption)
    assert "img1" in session.store.known_list()
