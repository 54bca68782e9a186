"""The three kinds of misread replies the reader now answers with a short, specific reminder (react/reminders.py):
a JSON action blob with markdown-escaped keys after a stray prefix, an `Action:` line that is a sentence naming no
tool, and prose that only announces a tool or says the answer is known without giving it. Beside each kind, the
near misses that must stay what they are."""

from __future__ import annotations

import pytest

from vchat.errors import ParseError
from vchat.react import FinalAnswer, ToolCall, parse_reply

TOOLS = ("caption_image", "answer_question", "instruct_edit", "detect_map", "transform", "generate_image")
ESCAPED, SENTENCE = "markdown escapes", "a sentence naming no tool"
ANNOUNCED, KNOWN = "you announced a tool", "you said you know the final answer"

REMINDED = [
    # ------------------------------------------------ escaped JSON keys after a stray prefix
    ('Sure! {"action": "caption\\_image", "action\\_input": {"image": "img1"}}', ESCAPED),
    ('Here you go:\n```json\n{"action": "instruct\\_edit", "action\\_input": {"image": "img2"}}\n```', ESCAPED),
    ('Response: {"tool\\_name": "detect_map", "tool\\_input": "img1"}', ESCAPED),
    ('Answer: {"action\\_name": "transform", "action\\_input": {"image": "img1", "op": "flip"}}', ESCAPED),
    # ------------------------------------------------ a sentence in the Action slot, no input
    ("Action: I will describe the picture for you", SENTENCE),
    ("Thought: Do I need to use a tool? Yes\nAction: Let me look at the image more carefully first", SENTENCE),
    ("Action: use the appropriate tool to answer", SENTENCE),
    ("Thought: yes\nAction: first I should think about what the user wants", SENTENCE),
    # ------------------------------------------------ prose that announces a tool or a known answer
    ("The best way is to call generate_image here.", ANNOUNCED),
    ("The easiest option would be to use the transform tool.", ANNOUNCED),
    ("I can use the captioning tool for this.", ANNOUNCED),
    ("I know the answer now.", KNOWN),
    ("I have the answer.", KNOWN),
    ("Now I know what the final answer is.", KNOWN),
    ("I can answer this now.", KNOWN),
    ("Okay, I have the final answer and can provide it now.", KNOWN),
]

KEPT = [
    # A plain JSON action blob (no escapes) after a stray answer keyword is still read as the call.
    pytest.param(
        'Answer: {"action": "caption_image", "action_input": {"image": "img1"}}',
        ToolCall("caption_image", '{"image": "img1"}'),
        id="plain-blob",
    ),
    # An escaped name inside an Action line is still a tool name.
    pytest.param("Action: caption\\_image\nAction Input: img1", ToolCall("caption_image", "img1"), id="escaped-name"),
    # A short tool-less Action followed by the answer is an answer.
    pytest.param("Action: None\nThe bus is red.", FinalAnswer("The bus is red."), id="none-then-answer"),
    # Answers that mention answers, or tools, are answers.
    pytest.param(
        "I have an answer for you: it is a cat.", FinalAnswer("I have an answer for you: it is a cat."), id="has-answer"
    ),
    pytest.param(
        "The answer is that the car is red.", FinalAnswer("The answer is that the car is red."), id="answer-is"
    ),
    pytest.param(
        "The best way to see it is in the picture img2.",
        FinalAnswer("The best way to see it is in the picture img2."),
        id="best-way-no-tool",
    ),
    pytest.param(
        'Notes: {"action\\_items": 3} were left.',
        FinalAnswer('Notes: {"action\\_items": 3} were left.'),
        id="escaped-key-data-is-an-answer",
    ),
]


@pytest.mark.parametrize(("reply", "hint"), REMINDED)
def test_misread_kinds_get_their_specific_reminder(reply: str, hint: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_reply(reply, TOOLS)
    assert hint in str(caught.value).splitlines()[0]


@pytest.mark.parametrize(("reply", "expected"), KEPT)
def test_near_misses_keep_their_meaning(reply: str, expected: ToolCall | FinalAnswer) -> None:
    assert parse_reply(reply, TOOLS) == expected
