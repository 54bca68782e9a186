"""History that remembers: tool-step records, interrupted turns, byte-identical after resume, stable condensing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import act, answer, make_session, write_photo

from vchat.chat import history
from vchat.chat.history import Turn
from vchat.config import Settings
from vchat.errors import Cancelled
from vchat.llm.scripted import ScriptedLLM, ScriptedReply
from vchat.resume import resume_session
from vchat.session import Session
from vchat.tools.registry import all_tools

TURNS = [
    (
        "find the edges of photo.png",
        [act("detect_map", '{"image": "img1", "kind": "canny"}'), act("flip_image", "img2")],
    ),
    (
        "make it gray",
        [
            act("transform", '{"image": "img3", "op": "grayscale"}'),
            act("flip_image", '{"image": "img4", "direction": "vertical"}'),
        ],
    ),
    ("now rotate it", [act("rotate_image", '{"image": "img5", "degrees": 90}'), act("crop_image", "img6, 0, 0, 8, 8")]),
]


def _script(turn: int) -> list[str]:
    _, calls = TURNS[turn]
    return [*calls, answer(f"done with turn {turn + 1}")]


def _requests(llm: ScriptedLLM) -> list[str]:
    return [json.dumps(messages, ensure_ascii=False) for messages in llm.calls]


def test_live_and_resumed_sessions_send_the_same_bytes(tmp_path: Path) -> None:
    live_dir, split_dir = tmp_path / "live", tmp_path / "split"
    for folder in (live_dir, split_dir):
        write_photo(folder)

    live = ScriptedLLM([reply for turn in range(3) for reply in _script(turn)])
    session = Session(Settings(out_dir=live_dir / "out"), all_tools(), live)
    for text, _ in TURNS:
        list(session.turn(text.replace("photo.png", str(live_dir / "photo.png"))))
    session.close()

    first = ScriptedLLM([reply for turn in range(2) for reply in _script(turn)])
    session = Session(Settings(out_dir=split_dir / "out"), all_tools(), first)
    for text, _ in TURNS[:2]:
        list(session.turn(text.replace("photo.png", str(split_dir / "photo.png"))))
    session.close()
    second = ScriptedLLM(_script(2))
    resumed, _ = resume_session(Settings(out_dir=split_dir / "out"), all_tools(), second, session.id)
    list(resumed.turn(TURNS[2][0]))

    live_requests = _requests(live)
    resumed_requests = _requests(first) + _requests(second)
    # the photo's path differs between the two folders; nothing else may
    live_requests = [r.replace(str(live_dir), "DIR") for r in live_requests]
    resumed_requests = [r.replace(str(split_dir), "DIR") for r in resumed_requests]
    assert len(live_requests) == 9
    assert resumed_requests == live_requests
    # what the third turn's first request remembers of the first two
    third = live.calls[6]
    assert third[2]["content"] == (
        'Tool steps:\nimg2 = detect_map(img1, kind="canny")\nimg3 = flip_image(img2)\n'
        "Thought: Do I need to use a tool? No\nAI: done with turn 1"
    )
    assert "(Images in this session:" in str(third[3]["content"])  # the note survives the resume
    assert 'img5 = flip_image(img4, direction="vertical")' in str(third[4]["content"])
    # each request extends the one before it within a turn: nothing earlier is rewritten
    for before, after in zip(live.calls, live.calls[1:], strict=False):
        if len(after) > len(before):
            assert after[: len(before)] == before


def test_cancelled_turn_is_kept_with_what_it_made(tmp_path: Path) -> None:
    session = make_session(tmp_path, [act("flip_image", "img1"), act("grayscale_image", "img2"), answer("never")])
    session.attach(write_photo(tmp_path))
    steps = session.turn("flip then gray")
    try:
        for step in steps:
            if step.kind == "observation":
                session.cancel_event.set()  # Ctrl-C while the second reply is being asked for
    except Cancelled:
        pass
    assert session.history[-1]["content"] == (
        "Tool steps:\nimg2 = flip_image(img1)\nThought: Do I need to use a tool? No\nAI: (interrupted)"
    )
    assert str(session.history[-2]["content"]).startswith("flip then gray")
    live = list(session.history)
    session.close()
    resumed, _ = resume_session(Settings(out_dir=tmp_path / "out"), all_tools(), None, session.id)
    assert resumed.history == live


def test_failed_steps_and_errors_are_recorded(tmp_path: Path) -> None:
    session = make_session(tmp_path, [act("caption_image", "img9"), act("make_magic", "img1"), answer("sorry")])
    session.attach(write_photo(tmp_path))
    list(session.turn("caption img9"))
    remembered = str(session.history[-1]["content"])
    assert remembered.startswith("Tool steps:\ncaption_image(img9) failed: bad input: unknown image 'img9'")
    assert remembered.endswith(
        "\nmake_magic(img1) failed: unknown tool\nThought: Do I need to use a tool? No\nAI: sorry"
    )
    session.llm = ScriptedLLM([ScriptedReply(error="the server went away")])
    list(session.turn("again"))
    assert session.history[-1]["content"].endswith("AI: (stopped: the server went away)")


def _turns(count: int) -> list[Turn]:
    turns = []
    for i in range(count):
        turn = Turn(text=f"request {i} " + "x" * 200, content=f"request {i} " + "x" * 200)
        turn.records.append(f'img{i + 2} = instruct_edit(img{i + 1}, "step {i}")')
        turn.close("final", f"answer {i} " + "y" * 200)
        turns.append(turn)
    return turns


def test_condensing_fits_the_budget_and_moves_rarely() -> None:
    turns = _turns(30)
    budget = 1200
    changes = 0
    previous: list = []
    for k in range(1, len(turns) + 1):
        messages = history.messages(turns[:k], budget)
        size = sum(history.estimate_tokens(str(m["content"])) for m in messages)
        assert size <= budget
        assert messages[-1]["content"].endswith(f"AI: answer {k - 1} " + "y" * 200)  # newest turn in full
        if previous and messages[: len(previous)] != previous:
            changes += 1  # the condensed head moved: one cache miss
        previous = messages
        assert messages == history.messages(turns[:k], budget)  # a pure function of the turns
    assert 0 < changes <= 6, changes  # a cache miss every few turns, not every turn
    assert "(Earlier turns, condensed:" in str(previous[0]["content"])
    assert history.messages(turns, 0) == [m for t in turns for m in history.turn_messages(t)]


def test_text_results_are_recorded_short() -> None:
    record = history.made_record("caption_image(img1)", [], "a brown dog " * 20)
    assert record.startswith('caption_image(img1) -> "a brown dog a brown dog')
    assert len(record) < 110 and record.endswith('…"')
    assert history.made_record('transform(img1, op="flip")', ["img2"], "Flip") == 'img2 = transform(img1, op="flip")'


def test_resumed_requests_are_byte_identical_over_http(tmp_path: Path) -> None:
    """The same 3-turn session live and resumed before each later turn: the same request bytes on the wire."""
    from tests.fake_openai import FakeOpenAI

    from vchat.llm.openai_backend import OpenAIChat

    def run(folder: Path, resume: bool) -> list[bytes]:
        photo = write_photo(folder)
        settings = Settings(out_dir=folder / "out")
        with FakeOpenAI([reply for turn in range(3) for reply in _script(turn)]) as fake:
            session = Session(settings, all_tools(), OpenAIChat("fake-model", base_url=fake.url, max_retries=0))
            session.attach(photo)
            for index, (text, _) in enumerate(TURNS):
                if index and resume:
                    session.close()
                    llm = OpenAIChat("fake-model", base_url=fake.url, max_retries=0)
                    session, _ = resume_session(settings, all_tools(), llm, session.id)
                assert list(session.turn(text.replace("photo.png", "img1")))[-1].kind == "final"
            session.close()
            return [request.raw for request in fake.chat_requests]

    live = run(tmp_path / "live", resume=False)
    resumed = run(tmp_path / "resumed", resume=True)
    assert len(live) == 9 and all(live)
    assert resumed == live
