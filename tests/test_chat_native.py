"""protocol = "tools" end to end over HTTP: function specs out, tool_calls back (streamed and whole), fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fake_openai import FakeOpenAI, Fault, Reply
from tests.helpers import answer, write_photo

from vchat.chat.prompts import tools_system_prompt
from vchat.config import Settings
from vchat.llm.openai_backend import OpenAIChat
from vchat.session import Session
from vchat.tools.registry import OFFERED, all_tools
from vchat.tools.schema import input_schema

PARALLEL = Reply(
    "Making both.",
    tool_calls=[
        {"id": "call_a", "name": "transform", "arguments": {"image": "img1", "op": "flip"}},
        {"id": "call_b", "name": "canny_edges", "arguments": {"image": "img1", "low": 50}},  # an old name works too
    ],
)


def _session(tmp_path: Path, fake: FakeOpenAI, *, stream: bool) -> Session:
    llm = OpenAIChat("fake-model", base_url=fake.url, stream=stream, max_retries=0)
    session = Session(Settings(out_dir=tmp_path / "out", protocol="tools"), all_tools(), llm)
    session.attach(write_photo(tmp_path))
    return session


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_parallel_tool_calls_run_in_order_and_answer_as_tool_messages(tmp_path: Path, stream: bool) -> None:
    with FakeOpenAI([PARALLEL, "Done: img2 is flipped, img3 has the edges."]) as fake:
        session = _session(tmp_path, fake, stream=stream)
        steps = list(session.turn("flip it and find the edges"))
        first, second = fake.chat_requests
    assert [s.kind for s in steps] == ["action", "observation", "action", "observation", "final"]
    assert [s.tool for s in steps if s.kind == "action"] == ["transform", "canny_edges"]
    assert [r.handle for s in steps for r in s.images] == ["img2", "img3"]
    assert steps[-1].text == "Done: img2 is flipped, img3 has the edges."
    # the request: the compact system prompt without a tool list, the tools as JSON-schema functions, no stop
    assert first.messages[0]["content"] == tools_system_prompt()
    assert first.stop is None
    assert first.tools is not None
    assert [t["function"]["name"] for t in first.tools] == sorted(t.name for t in OFFERED)
    transform = next(t for t in first.tools if t["function"]["name"] == "transform")["function"]["parameters"]
    full = input_schema(type(session.tools["transform"]))
    assert list(transform["properties"]) == list(full["properties"]) and transform["required"] == ["image", "op"]
    assert transform["properties"]["op"]["enum"] == ["resize", "crop", "rotate", "flip", "grayscale"]
    # the follow-up: the assistant's calls, then one tool message per call, in order, with the ids
    assistant, flip, edges = second.messages[-3:]
    assert assistant["role"] == "assistant" and [c["id"] for c in assistant["tool_calls"]] == ["call_a", "call_b"]
    assert json.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"image": "img1", "low": 50}
    assert (flip["role"], flip["tool_call_id"]) == ("tool", "call_a") and flip["content"].endswith("New image img2.")
    assert (edges["tool_call_id"], edges["content"].endswith("New image img3.")) == ("call_b", True)
    assert second.messages[: len(first.messages)] == first.messages  # nothing earlier rewritten
    # history of the turn, in the tools style (no ReAct keywords)
    assert session.history[-1]["content"] == (
        'Tool steps:\nimg2 = transform(img1, op="flip")\nimg3 = canny_edges(img1, low=50)\n'
        "Done: img2 is flipped, img3 has the edges."
    )


def test_a_bad_call_is_an_observation_not_a_crash(tmp_path: Path) -> None:
    bad = Reply("", tool_calls=[{"name": "transform", "arguments": '{"image": "img1", "op": "crop"}'}])
    with FakeOpenAI([bad, "Sorry, I need a box."]) as fake:
        session = _session(tmp_path, fake, stream=True)
        steps = list(session.turn("crop it"))
        follow = fake.chat_requests[1].messages[-1]
    assert steps[1].observation == "bad input for transform: transform op=crop needs left, top, right, bottom"
    assert follow == {"role": "tool", "tool_call_id": "call_0", "content": steps[1].observation}
    assert steps[-1].kind == "final"


def test_server_refusing_tools_falls_back_to_react_with_one_notice(tmp_path: Path) -> None:
    replies = [Fault.refuse_tools(), answer("Hello from ReAct."), answer("Still ReAct.")]
    with FakeOpenAI(replies) as fake:
        session = _session(tmp_path, fake, stream=True)
        steps = list(session.turn("hi"))
        later = list(session.turn("and again"))
        requests = fake.chat_requests
    assert [s.kind for s in steps] == ["notice", "final"]
    assert "refused native tool calls" in steps[0].text and "using the text (ReAct) protocol" in steps[0].text
    assert "\n" not in steps[0].text
    assert steps[1].text == "Hello from ReAct."
    assert requests[0].tools is not None and requests[1].tools is None
    assert requests[1].stop == ["\nObservation:"] and "Action Input:" in requests[1].messages[0]["content"]
    # the session stays on ReAct: no second refused request, no second notice
    assert [s.kind for s in later] == ["final"] and len(requests) == 3 and requests[2].tools is None
    assert session.protocol == "react"


def test_backend_without_native_calls_uses_react(tmp_path: Path) -> None:
    from vchat.llm.scripted import ScriptedLLM

    session = Session(Settings(out_dir=tmp_path / "out", protocol="tools"), all_tools(), ScriptedLLM([answer("ok")]))
    steps = list(session.turn("hi"))
    assert [s.kind for s in steps] == ["notice", "final"]
    assert steps[0].text == "scripted has no native tool calling; using the text (ReAct) protocol instead"


def test_input_schema_renders_every_field_spec() -> None:
    from vchat.tools.registry import TOOL_CLASSES, tool_class

    for cls in (*TOOL_CLASSES, *OFFERED):
        schema = input_schema(cls)
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert list(schema["properties"]) == [f.name for f in cls.inputs]
        assert schema["required"] == [f.name for f in cls.inputs if f.required]
        for field in cls.inputs:
            prop = schema["properties"][field.name]
            assert prop["description"]
            kinds = {"int": "integer", "float": "number", "bool": "boolean", "images": "array"}
            assert prop["type"] == kinds.get(field.kind, "string")
            if field.kind == "choice":
                assert prop["enum"] == list(field.choices)
            if not field.required and field.default is not None:
                assert prop["default"] == field.default
    crop = input_schema(tool_class("crop_image"))  # type: ignore[arg-type]
    assert crop["properties"]["left"] == {"type": "integer", "description": "left edge", "minimum": 0}
    json.dumps(input_schema(tool_class("generate_from_map")))  # type: ignore[arg-type]  # JSON-ready


FLIP = Reply("", tool_calls=[{"name": "transform", "arguments": {"image": "img1", "op": "flip"}}])


def _refusal(message: str, param: str) -> Fault:
    fault = Fault.status_error(400, message)
    assert fault.body is not None
    fault.body["error"]["param"] = param
    return fault


@pytest.mark.parametrize(
    ("refusal", "gone", "instead"),
    [
        (
            _refusal("Unsupported value: 'temperature' does not support 0 with this model.", "temperature"),
            "temperature",
            None,
        ),
        (
            _refusal("Unsupported parameter: 'max_tokens' is not supported with this model.", "max_tokens"),
            "max_tokens",
            "max_completion_tokens",
        ),
    ],
    ids=["temperature", "max_tokens"],
)
def test_a_refused_parameter_is_dropped_and_the_request_sent_again(
    tmp_path: Path, refusal: Fault, gone: str, instead: str | None
) -> None:
    with FakeOpenAI([refusal, FLIP, "Flipped: img2."]) as fake:
        session = _session(tmp_path, fake, stream=True)
        steps = list(session.turn("flip it"))
        refused, retried, after = fake.chat_requests
    assert steps[-1].kind == "final" and steps[-1].text == "Flipped: img2."
    assert gone in refused.body and refused.tools is not None
    for request in (retried, after):  # not sent again for the rest of the session
        assert gone not in request.body and request.tools is not None
        assert instead is None or request.body[instead] == 1024


def test_images_reach_the_model_when_vision_is_on(tmp_path: Path) -> None:
    def images_in(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p for m in messages if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image_url"]

    with FakeOpenAI([FLIP, "Flipped: img2."]) as fake:
        llm = OpenAIChat("gpt-4o-mini", base_url=fake.url, max_retries=0)
        settings = Settings(out_dir=tmp_path / "out", protocol="tools", vision="on", vision_max_side=64)
        session = Session(settings, all_tools(), llm)
        session.attach(write_photo(tmp_path))
        steps = list(session.turn("flip it"))
        first, second = fake.chat_requests
    assert steps[-1].kind == "final"
    assert first.messages[0]["content"] == tools_system_prompt(vision=True)
    assert len(images_in(first.messages)) == 1 and isinstance(first.messages[-1]["content"], list)
    # After the tool message, the image it made follows in a user message (tool messages take text only).
    tool, shown = second.messages[-2:]
    assert tool["role"] == "tool" and tool["content"].endswith("New image img2.")
    assert shown["role"] == "user" and {"type": "text", "text": "\nimg2:"} in shown["content"]
    assert len(images_in([shown])) == 1 and len(images_in(second.messages)) == 2
    assert second.messages[: len(first.messages)] == first.messages  # nothing earlier rewritten
