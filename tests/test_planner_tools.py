"""The built-in planner with native tool calls (`protocol = "tools"`): calls read out of `<tool_call>` blocks, and a
real in-process turn with a tiny Qwen3.5 overfitted to call a tool through its chat template's tool format."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from tests.test_planner_turn import _overfit, _turn
from tests.zoo import planner_config, planner_processor, planner_tokenizer

from helpers import write_photo
from vchat.chat import prompts
from vchat.config import Settings
from vchat.llm.base import Message, NativeCall
from vchat.llm.local import LocalLLM
from vchat.llm.local_tools import CallSplitter, parse_calls, template_calls
from vchat.llm.select import select_llm

# A chat template written here in the shape of Qwen's tool templates: the tools as JSON lines in the system block,
# calls as <tool_call> JSON, results as <tool_response> in a user turn.
TOOLS_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'tool' -%}{{ '<|im_start|>user\n<tool_response>\n' + m['content'] + '\n</tool_response>' }}"
    "{%- else -%}{{ '<|im_start|>' + m['role'] + '\n' }}"
    "{%- if m['content'] is string -%}{{ m['content'] }}"
    "{%- else -%}{%- for p in m['content'] -%}"
    "{%- if p['type'] == 'image' -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif p['type'] == 'text' -%}{{ p['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- if m['role'] == 'system' and tools -%}{{ '\n# Tools\n<tools>' }}"
    "{%- for t in tools -%}{{ '\n' + (t | tojson) }}{%- endfor -%}{{ '\n</tools>' }}{%- endif -%}"
    "{%- for c in m.get('tool_calls', []) -%}"
    '{{ \'\n<tool_call>\n{"name": "\' + c.function.name + \'", "arguments": \' + (c.function.arguments | tojson) }}'
    "{{ '}\n</tool_call>' }}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{ '<think>\n\n</think>\n\n' }}{%- endif -%}"
    "{%- endif -%}"
)
CALL = '<tool_call>\n{"name": "flip_image", "arguments": {"image": "img1"}}\n</tool_call>'
DONE = "Here it is flipped, img2."


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # training the tiny model is faster on one thread


# -- reading calls ---------------------------------------------------------------------------------------------


def _split(pieces: Sequence[str]) -> tuple[str, list[NativeCall]]:
    splitter = CallSplitter()
    shown = "".join(splitter.feed(piece) for piece in pieces) + splitter.flush()
    return shown, splitter.calls()


def test_text_before_a_call_streams_and_the_call_is_held_back_even_when_its_tag_is_split() -> None:
    reply = 'Flipping it.\n<tool_call>\n{"name": "flip_image", "arguments": {"image": "img1"}}\n</tool_call>'
    pieces = [reply[i : i + 3] for i in range(0, len(reply), 3)]  # "<tool_call>" arrives in pieces
    shown, calls = _split(pieces)
    assert shown == "Flipping it.\n"
    assert calls == [NativeCall("call_0", "flip_image", '{"image": "img1"}')]


def test_a_reply_without_calls_is_all_text_including_a_lone_angle_bracket() -> None:
    shown, calls = _split(["The edges are in img2 <", "tool", " output."])
    assert shown == "The edges are in img2 <tool output." and calls == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(  # Qwen3.5's XML form; a number reads as JSON, a word stays text
            "<tool_call>\n<function=resize_image>\n<parameter=image>\nimg1\n</parameter>\n"
            "<parameter=width>\n512\n</parameter>\n</function>\n</tool_call>",
            [NativeCall("call_0", "resize_image", '{"image": "img1", "width": 512}')],
            id="xml",
        ),
        pytest.param(  # two calls in one reply, in order
            '<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>\n'
            '<tool_call>{"name": "b", "arguments": "{\\"y\\": 2}"}</tool_call>',
            [NativeCall("call_0", "a", '{"x": 1}'), NativeCall("call_1", "b", '{"y": 2}')],
            id="two-json",
        ),
        pytest.param(  # cut at the token cap: the open block is still read
            '<tool_call>\n{"name": "flip_image", "arguments": {"image": "img1"}}',
            [NativeCall("call_0", "flip_image", '{"image": "img1"}')],
            id="unterminated",
        ),
        pytest.param(  # not readable: goes on as is, for the binder to tell the model what was wrong
            "<tool_call>\nflip it please\n</tool_call>",
            [NativeCall("call_0", "", "flip it please")],
            id="prose",
        ),
    ],
)
def test_calls_are_read_in_both_template_forms(text: str, expected: list[NativeCall]) -> None:
    assert parse_calls(text) == expected


def test_tool_calls_reach_the_template_with_arguments_as_a_mapping() -> None:
    messages: list[Message] = [
        {"role": "user", "content": "flip"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c0", "type": "function", "function": {"name": "f", "arguments": '{"image": "img1"}'}},
                {"id": "c1", "type": "function", "function": {"name": "g", "arguments": "not json"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c0", "content": "New image img2."},
    ]
    chat = [{"role": m["role"], "content": m["content"]} for m in messages]
    out = template_calls(messages, chat)
    assert out[1]["tool_calls"][0]["function"]["arguments"] == {"image": "img1"}
    assert out[1]["tool_calls"][1]["function"]["arguments"] == "not json"
    assert "tool_calls" not in out[0] and out[2] == chat[2]
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"image": "img1"}'  # the input is not changed


# -- a real turn -----------------------------------------------------------------------------------------------


def _planner_folder(folder: Path) -> Path:
    import torch
    from transformers import Qwen3_5ForConditionalGeneration

    corpus = (prompts.tools_system_prompt(vision=True), CALL, DONE, "flip the image", "New image img2", "tool_response")
    tokenizer = planner_tokenizer(corpus, vocab_size=900)
    torch.manual_seed(0)
    Qwen3_5ForConditionalGeneration(planner_config(tokenizer, layers=2, init_std=0.02)).save_pretrained(folder)
    processor = planner_processor(tokenizer)
    processor.chat_template = TOOLS_TEMPLATE
    processor.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_a_real_in_process_turn_with_native_tool_calls(tmp_path: Path) -> None:
    folder = _planner_folder(tmp_path / "planner")
    settings = Settings(
        out_dir=tmp_path / "out", llm=f"local:{folder}", protocol="tools", max_tokens=96, max_format_retries=0
    )
    settings.runtime.device, settings.runtime.dtype = "cpu", "float32"
    settings.planner_int8 = "off"  # trained in place below: float weights (tests/test_llm_speed.py tries int8)
    llm = select_llm(settings)
    assert isinstance(llm, LocalLLM)
    photo = write_photo(tmp_path, width=64, height=48)

    _, calls = _turn(settings, llm, photo, "complete_with_tools")
    first, tools = calls[0]
    assert [t["function"]["name"] for t in tools] == ["flip_image"]
    _overfit(llm, [(first, CALL)], tools=tools)
    steps, calls = _turn(settings, llm, photo, "complete_with_tools")
    assert [s.kind for s in steps][:2] == ["action", "observation"], [(s.kind, s.text) for s in steps]
    second, _ = calls[1]
    assert any(m["role"] == "tool" and "img2" in str(m["content"]) for m in second)  # the result went back as a tool
    (asked,) = [m for m in second if m.get("tool_calls")]
    assert json.loads(asked["tool_calls"][0]["function"]["arguments"]) == {"image": "img1"}
    _overfit(llm, [(first, CALL), (second, DONE)], tools=tools)

    steps, _ = _turn(settings, llm, photo, "complete_with_tools")
    assert [s.kind for s in steps] == ["action", "observation", "final"], [(s.kind, s.text) for s in steps]
    assert steps[0].tool == "flip_image" and steps[2].text == DONE
    (made,) = steps[1].images
    with Image.open(photo) as original, Image.open(made.path) as flipped:
        assert flipped.convert("RGB").tobytes() == ImageOps.mirror(original.convert("RGB")).tobytes()
    assert llm.last.cached_tokens > 0  # the system block, tools included, came from the prefix cache
    assert llm.last.constrained  # decoded under the native grammar (llm/grammar_native.py)
