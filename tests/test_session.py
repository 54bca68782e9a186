from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers import act, answer, make_session, write_photo

from vchat.chat.paths import find_image_paths
from vchat.config import Settings
from vchat.errors import NoModelError, VchatError
from vchat.llm.scripted import ScriptedLLM
from vchat.resume import resume_session
from vchat.store.transcript import read_records
from vchat.tools.registry import all_tools


def test_paths_typed_in_a_message_are_attached(tmp_path: Path) -> None:
    spaced = write_photo(tmp_path / "My Photos", "the cat.png")
    plain = write_photo(tmp_path, "dog.jpg")
    text = f'compare {spaced} with "{plain}" please'
    found = find_image_paths(text)
    assert [p for _, p in found] == [spaced, plain]


def test_at_and_tilde_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_photo(tmp_path, "a.png")
    found = find_image_paths("edit @~/a.png, thanks")
    assert [p for _, p in found] == [tmp_path / "a.png"]


def test_words_that_only_look_like_files_are_left_alone(tmp_path: Path) -> None:
    assert find_image_paths("make a logo.png for me and a photo.jpg") == []


def test_turn_replaces_paths_by_handles_for_the_model(tmp_path: Path) -> None:
    path = write_photo(tmp_path, "cat.png")
    session = make_session(tmp_path, [answer("ok")])
    list(session.turn(f"describe {path}"))
    sent = session.llm.calls[0][-1]["content"]
    assert sent.startswith("describe img1")
    assert str(path) not in sent


def test_transcript_records_every_step(tmp_path: Path) -> None:
    session = make_session(tmp_path, [act("canny_edges", "img1"), answer("img2 has the edges")])
    session.attach(write_photo(tmp_path))
    list(session.turn("edges please"))
    records, warning = read_records(session.transcript.path)
    assert warning is None
    kinds = [r["type"] for r in records]
    assert kinds[0] == "session"
    assert kinds.count("image") == 2
    steps = [r for r in records if r["type"] == "step"]
    assert [s["kind"] for s in steps] == ["action", "observation", "final"]
    assert steps[1]["images"] == ["img2"]


def test_resume_restores_history_handles_and_lineage(tmp_path: Path) -> None:
    session = make_session(tmp_path, [act("canny_edges", "img1"), answer("img2 has the edges")])
    session.attach(write_photo(tmp_path))
    list(session.turn("edges please"))
    session.close()
    settings = Settings(out_dir=tmp_path / "out")
    resumed, warning = resume_session(settings, all_tools(), ScriptedLLM([act("flip_image", "img2"), answer("img3")]))
    assert warning is None
    assert resumed.id == session.id
    assert [r.handle for r in resumed.store] == ["img1", "img2"]
    assert resumed.store.get("img2").parents == ("img1",)
    assert len(resumed.history) == 2
    steps = list(resumed.turn("now flip it"))
    assert steps[1].images[0].handle == "img3"
    assert [r.handle for r in resumed.store.ancestors("img3")] == ["img2", "img1"]


def test_resume_ignores_a_torn_last_line(tmp_path: Path) -> None:
    session = make_session(tmp_path, [answer("hello")])
    session.attach(write_photo(tmp_path))
    list(session.turn("hi"))
    session.close()
    with open(session.transcript.path, "a", encoding="utf-8") as fh:
        fh.write('{"type": "step", "kind": "fin')
    resumed, warning = resume_session(Settings(out_dir=tmp_path / "out"), all_tools(), None)
    assert warning is not None and "skipped 1 unreadable line" in warning
    assert len(resumed.store) == 1


def test_resume_unknown_session_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(VchatError, match="no sessions"):
        resume_session(Settings(out_dir=tmp_path / "none"), all_tools(), None)


def test_turn_without_model_and_empty_message(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    with pytest.raises(NoModelError):
        list(session.turn("hi"))
    session.llm = ScriptedLLM([])
    with pytest.raises(VchatError, match="empty message"):
        list(session.turn("   "))


def test_run_tool_directly(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    session.attach(write_photo(tmp_path))
    step = session.run_tool("canny_edges", "img1, low=10")
    assert step.images[0].params == {"low": 10, "high": 200}
    step = session.run_tool("canny_edges", named={"image": "img1", "low": "10", "high": "40"})
    assert step.images[0].params == {"low": 10, "high": 40}
    records, _ = read_records(session.transcript.path)
    assert any(r["type"] == "tool" for r in records)
    assert json.loads(session.transcript.path.read_text().splitlines()[-1])["kind"] == "observation"


def test_observers_hear_one_call_and_are_gone_after_it(tmp_path: Path) -> None:
    from tests.helpers import make_session, write_photo

    from vchat.session import Observers

    session = make_session(tmp_path, [answer("a square")])
    texts: list[str] = []
    attached: list[str] = []
    photo = write_photo(tmp_path)
    list(
        session.turn(f"what is {photo}?", Observers(text=texts.append, attach=lambda ref: attached.append(ref.handle)))
    )
    assert "".join(texts).endswith("a square") and attached == ["img1"]
    session.attach(photo)  # outside the turn: nobody is told
    assert attached == ["img1"]
    seen: list[str] = []
    with session.observed(Observers(progress=lambda done, total, label: seen.append(label))):
        session.run_tool("flip_image", named={"image": "img1"})  # no observers of its own: the block's hear it
        session.progress(1, 1, "step")
    session.progress(1, 1, "after")
    assert seen[-1] == "step" and "after" not in seen
