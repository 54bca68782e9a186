"""The system prompt: every tool and input is there, shared options once, byte-identical when rebuilt."""

from __future__ import annotations

from vchat.prompts import system_prompt
from vchat.tools.registry import TOOL_CLASSES


def test_every_tool_and_required_input_is_described() -> None:
    prompt = system_prompt(TOOL_CLASSES)
    for tool in TOOL_CLASSES:
        assert f"\n{tool.name}: {tool.description}" in prompt
        for field in tool.inputs:
            if field.required:
                assert f"    - {field.describe()}" in prompt
            else:
                assert f"{field.name}=" in prompt or f"- {field.describe()}" in prompt


def test_shared_options_are_described_once() -> None:
    prompt = system_prompt(TOOL_CLASSES)
    assert prompt.count("denoising steps") == 1
    assert "also: " in prompt
    assert "steps=20" in prompt and "steps=30" in prompt  # each tool keeps its own default


def test_prompt_is_stable_whatever_the_order() -> None:
    assert system_prompt(TOOL_CLASSES) == system_prompt(tuple(reversed(TOOL_CLASSES)))
