"""The planner sees: images as content parts (downscaled, newest few only), over real HTTP to an
OpenAI-compatible server, and the fallback when a server turns images down."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from fake_openai import FakeOpenAI
from helpers import act, answer, write_photo
from vchat.chat import prompts
from vchat.chat.vision import (
    DROPPED,
    Vision,
    dropped_count,
    image_part,
    windowed,
)
from vchat.config import Settings
from vchat.llm.base import Message
from vchat.llm.openai_backend import OpenAIChat
from vchat.llm.pixels import decode_part, model_sees, template_messages
from vchat.session import Session
from vchat.tools.registry import all_tools


def session(tmp_path: Path, fake: FakeOpenAI, model: str = "gpt-4o-mini", **fields: Any) -> Session:
    settings = Settings(out_dir=tmp_path / "out", **fields)
    return Session(settings, all_tools(), OpenAIChat(model, base_url=fake.url, max_retries=0))


def images_in(messages: list[dict[str, Any]]) -> list[Image.Image]:
    found = []
    for message in messages:
        if isinstance(message["content"], list):
            found += [decode_part(p) for p in message["content"] if p["type"] == "image_url"]
    return found


def test_image_part_downscales_and_round_trips(tmp_path: Path) -> None:
    path = write_photo(tmp_path, width=640, height=320)
    part = image_part(path, 448)
    assert part["image_url"]["url"].startswith("data:image/png;base64,")
    assert decode_part(part).size == (448, 224)
    small = write_photo(tmp_path, "small.png", width=64, height=48)
    assert decode_part(image_part(small, 448)).size == (64, 48)  # never enlarged


def test_transparent_images_are_flattened_onto_white(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(path)
    raw = base64.b64decode(image_part(path, 448)["image_url"]["url"].split(",", 1)[1])
    assert Image.open(io.BytesIO(raw)).convert("RGB").getpixel((5, 5)) == (255, 255, 255)


def test_the_window_moves_in_blocks() -> None:
    # keep 3: at least the newest 3 images as pixels, at most 5; the oldest go 3 at a time.
    shown = [total - dropped_count(total, 3) for total in range(13)]
    assert shown == [0, 1, 2, 3, 4, 5, 3, 4, 5, 3, 4, 5, 3]
    drops = [dropped_count(total, 3) for total in range(13)]
    assert drops == sorted(drops)  # once dropped, an image never comes back (earlier bytes stay put)
    assert dropped_count(4, 1) == 3 and dropped_count(4, 0) == 4


def test_only_a_window_of_the_newest_images_stays_as_pixels(tmp_path: Path) -> None:
    path = write_photo(tmp_path)
    part = image_part(path, 64)
    messages: list[Message] = [
        {"role": "user", "content": [{"type": "text", "text": "a"}, part, part]},
        {"role": "user", "content": [{"type": "text", "text": "b"}, part, part]},
        {"role": "user", "content": "c"},
    ]
    kept = windowed(messages, 2)  # 4 images: the oldest 2 go
    assert [len(images_in([dict(m)])) for m in kept] == [0, 2, 0]
    assert DROPPED in str(kept[0]["content"][1]) and kept[1] is messages[1] and kept[2] is messages[2]
    assert isinstance(messages[0]["content"], list) and messages[0]["content"][1] is part  # input untouched
    assert windowed(messages[:1], 2) == messages[:1]  # within the window: nothing changes
    chat, images = template_messages(kept)
    assert len(images) == 2 and {"type": "image"} in chat[1]["content"]


def test_vision_families_from_model_names() -> None:
    for name in ("gpt-4o-mini", "gpt-4.1", "llava:13b", "qwen2.5vl:7b", "Qwen/Qwen3-VL-8B-Instruct", "gemma3:4b"):
        assert model_sees(name), name
    for name in ("llama3.1", "gpt-3.5-turbo", "mistral:7b", "qwen2.5:7b", "fake-model"):
        assert not model_sees(name), name


def test_system_prompt_says_the_planner_sees() -> None:
    tools = [type(t) for t in all_tools()]
    blind, seeing = prompts.system_prompt(tools), prompts.system_prompt(tools, vision=True)
    assert prompts.SEES in seeing and prompts.SEES not in blind
    assert "cannot see" not in seeing
    assert seeing == prompts.system_prompt(tools, vision=True)  # byte-stable


def test_image_parts_sent_when_vision_is_on(tmp_path: Path) -> None:
    photo = write_photo(tmp_path, width=900, height=600)
    with FakeOpenAI([act("flip_image", '{"image": "img1"}'), answer("Flipped: img2.")]) as fake:
        chat = session(tmp_path, fake, vision="auto", vision_max_side=96)
        chat.attach(photo)
        steps = list(chat.turn("flip it"))
    assert steps[-1].kind == "final"
    first, second = (r.messages for r in fake.chat_requests)
    assert "can see the images" in first[0]["content"]
    (shown,) = images_in(first)
    assert shown.size == (96, 64)  # the attached photo, downscaled to vision_max_side
    # After the tool ran, its result is shown too (the model checks it before answering).
    assert len(images_in(second)) == 2
    # What the session keeps for later turns is text: pixels never pile up in the history.
    assert all(isinstance(m["content"], str) for m in chat.history)


def test_no_image_parts_when_vision_is_off_or_the_model_is_text_only(tmp_path: Path) -> None:
    photo = write_photo(tmp_path)
    for model, mode in (("gpt-4o-mini", "off"), ("llama3.1", "auto")):
        with FakeOpenAI([answer("ok")]) as fake:
            chat = session(tmp_path / model, fake, model=model, vision=mode)
            chat.attach(photo)
            list(chat.turn("what is it?"))
        (request,) = fake.chat_requests
        assert images_in(request.messages) == []
        assert all(isinstance(m["content"], str) for m in request.messages)
        assert "cannot see images" in request.messages[0]["content"]


def test_vision_on_forces_pixels_for_an_unknown_model(tmp_path: Path) -> None:
    with FakeOpenAI([answer("ok")]) as fake:
        chat = session(tmp_path, fake, model="my-finetune", vision="on")
        chat.attach(write_photo(tmp_path))
        list(chat.turn("what is it?"))
    assert len(images_in(fake.chat_requests[0].messages)) == 1


def test_a_server_that_rejects_images_turns_vision_off_and_the_turn_goes_on(tmp_path: Path) -> None:
    with FakeOpenAI([answer("A yellow square."), answer("Still yellow.")], refuse_images=True) as fake:
        chat = session(tmp_path, fake, vision="on")
        chat.attach(write_photo(tmp_path))
        steps = list(chat.turn("what is it?"))
        assert [s.kind for s in steps] == ["notice", "final"]
        assert "does not take images" in steps[0].text and "vision is off" in steps[0].text
        later = list(chat.turn("and now?"))
    assert [s.kind for s in later] == ["final"]  # said once
    rejected, retried, third = fake.chat_requests
    assert images_in(rejected.messages) and not images_in(retried.messages)
    assert not images_in(third.messages) and "cannot see images" in third.messages[0]["content"]


def test_images_made_by_tools_are_bounded(tmp_path: Path) -> None:
    flips = [act("flip_image", f'{{"image": "img{n}"}}') for n in range(1, 6)]
    with FakeOpenAI([*flips, answer("done")]) as fake:
        chat = session(tmp_path, fake, vision="on", vision_images=2, vision_max_side=64)
        chat.attach(write_photo(tmp_path))
        list(chat.turn("flip it five times"))
    requests = fake.chat_requests
    counts = [len(images_in(r.messages)) for r in requests]
    assert counts == [1, 2, 3, 2, 3, 2]  # never fewer than 2 (once there are 2), never more than 3
    # Append-only between moves of the window: only requests 4 and 6 change what was sent before.
    rewrites = [
        n + 1
        for n in range(1, len(requests))
        if requests[n].messages[: len(requests[n - 1].messages)] != requests[n - 1].messages
    ]
    assert rewrites == [4, 6]
    assert DROPPED not in str(requests[2].messages) and all(DROPPED in str(r.messages) for r in requests[3:])


def test_vision_images_zero_sends_none(tmp_path: Path) -> None:
    with FakeOpenAI([answer("ok")]) as fake:
        chat = session(tmp_path, fake, vision="on", vision_images=0)
        chat.attach(write_photo(tmp_path))
        list(chat.turn("hi"))
    assert not images_in(fake.chat_requests[0].messages)
    assert chat.vision() is None and Vision().max_side == 448
