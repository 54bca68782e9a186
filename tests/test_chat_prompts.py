"""The system prompt: every capability offered, compact (o200k token budget), shared options once, stable bytes."""

from __future__ import annotations

import re

import bpe_openai
import pytest

from vchat.chat.prompts import SHARED_MARK, system_prompt
from vchat.tools.registry import FAMILY_CLASSES, OFFERED, TOOL_CLASSES, all_tools, family_of

# bpe-openai 0.1.4 reads its tables with importlib.resources.open_binary (deprecated, harmless).
pytestmark = pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")

PROMPT = system_prompt(type(t) for t in all_tools())
SHARED = PROMPT.split("also take:", 1)[1].split("\n", 1)[0]
BUDGET = 1150  # o200k tokens (half of Visual ChatGPT's 2,299)


def _line(name: str) -> str:
    match = re.search(rf"^{name}\((.*?)\)\{SHARED_MARK}?:(.*)$", PROMPT, re.MULTILINE)
    assert match, f"{name} is not listed"
    return match.group(0)


def test_every_capability_is_offered_with_its_required_inputs() -> None:
    for tool in TOOL_CLASSES:
        found = family_of(tool.name)
        if found is None:
            line = _line(tool.name)
            assert (tool.brief or tool.description) in line
            for field in tool.inputs:
                assert field.name in line or f"{field.name} " in SHARED, (tool.name, field.name)
            continue
        family, choice = found
        line = _line(family.name)
        assert f"{family.selector}: " in line and choice in line.split(f"{family.selector}: ", 1)[1]
        signature = line.split(")", 1)[0]
        for field in tool.inputs:
            assert field.name in signature or f"{field.name} " in SHARED, (tool.name, field.name)
    # members are reachable through their family, not listed one by one
    assert "canny_edges(" not in PROMPT and "generate_from_canny(" not in PROMPT
    assert len([line for line in PROMPT.splitlines() if re.match(r"^\w+\(", line)]) == len(OFFERED)
    assert {f.name for f in FAMILY_CLASSES} <= {t.name for t in OFFERED}


def test_prompt_fits_the_token_budget() -> None:
    tokens = len(bpe_openai.get_encoding("o200k_base").encode(PROMPT))
    assert tokens <= BUDGET, tokens


def test_shared_options_are_described_once() -> None:
    assert PROMPT.count("denoising steps") == 1
    assert PROMPT.count("steps") == 2 and "steps 1..150 (denoising steps)" in SHARED  # in no signature
    assert "instruct_edit(image, instruction, references=[], image_guidance=1.5)+:" in PROMPT
    assert "caption_image(image):" in PROMPT  # no mark: takes no shared option


def test_prompt_is_stable_whatever_the_order() -> None:
    tools = [type(t) for t in all_tools()]
    assert system_prompt(tuple(reversed(tools))) == PROMPT
    # listing the members too changes nothing: a family hides them
    assert system_prompt(OFFERED) == PROMPT


def test_long_tool_text_is_capped_to_whole_lines() -> None:
    from vchat.chat.prompts import TOOL_TEXT_MAX, cap_tool_text

    detections = "\n".join(f"cat {i}: score 0.{90 - i}, box ({i}, {i}, {i + 40}, {i + 40})" for i in range(60))
    capped = cap_tool_text(detections)
    kept, note = capped.rsplit("\n", 1)
    assert len(kept) <= TOOL_TEXT_MAX and detections.startswith(kept + "\n")
    assert note == f"… ({60 - len(kept.splitlines())} more lines)"
    assert cap_tool_text("short") == "short"
    one_line = cap_tool_text("x" * 2000)
    assert one_line.startswith("x" * 400) and one_line.endswith("more characters)") and len(one_line) < 560
