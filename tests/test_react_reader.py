"""Parser table for the kinds of misses models make: each kind has its own cases (written for vchat).

Expected `Reminder` means the reply must come back to the model as a short format reminder
(a ParseError whose text says what was wrong), not be shown to the user as an answer.
"""

from __future__ import annotations

import pytest

from vchat.errors import ParseError
from vchat.react import FinalAnswer, ToolCall, parse_reply

TOOLS = ("caption_image", "answer_question", "instruct_edit", "detect_map", "transform", "generate_image")
CAPTION = '{"image": "img1"}'
WINTER = '{"image": "img2", "instruction": "make it winter"}'


class Reminder:
    """The reply must be answered with a format reminder containing `hint`."""

    def __init__(self, hint: str) -> None:
        self.hint = hint


CASES = [
    # ------------------------------------------------ a JSON action blob after a stray prefix
    pytest.param(
        f'Answer: {{"action": "caption_image", "action_input": {CAPTION}}}',
        ToolCall("caption_image", CAPTION),
        id="blob-after-answer",
    ),
    pytest.param(
        f'Final Answer:\n```json\n{{"action": "instruct_edit", "action_input": {WINTER}}}\n```',
        ToolCall("instruct_edit", WINTER),
        id="blob-fenced-after-final-answer",
    ),
    pytest.param(
        'AI: {"tool": "detect_map", "tool_input": {"image": "img1", "kind": "depth"}}',
        ToolCall("detect_map", '{"image": "img1", "kind": "depth"}'),
        id="blob-after-ai",
    ),
    pytest.param(
        'Answer: {"action": "Final Answer", "action_input": "It is a red bus."}',
        FinalAnswer("It is a red bus."),
        id="blob-final-after-answer",
    ),
    pytest.param(
        'Answer: the config was {"mode": "fast"} as you asked.',
        FinalAnswer('the config was {"mode": "fast"} as you asked.'),
        id="answer-with-data-json-stays-answer",
    ),
    # ------------------------------------------------ Action: tool, Input: value on one line
    pytest.param("Action: caption_image, Input: img1", ToolCall("caption_image", "img1"), id="one-line-input"),
    pytest.param(
        f"Thought: yes\nAction: instruct_edit, Action Input: {WINTER}",
        ToolCall("instruct_edit", WINTER),
        id="one-line-action-input",
    ),
    pytest.param("Action: caption_image; Input: img3", ToolCall("caption_image", "img3"), id="one-line-semicolon"),
    pytest.param("Action: caption_image - Input: img2", ToolCall("caption_image", "img2"), id="one-line-dash"),
    # ------------------------------------------------ empty Action Input, value in a code block or on next lines
    pytest.param(
        f"Thought: I need a caption.\nAction: caption_image\nAction Input:\n```\n{CAPTION}\n```",
        ToolCall("caption_image", CAPTION),
        id="empty-input-then-fence",
    ),
    pytest.param(
        f"Action: instruct_edit\nAction Input:\n\n{WINTER}\n\nThis will make it look wintry.",
        ToolCall("instruct_edit", WINTER),
        id="empty-input-then-json-lines-then-prose",
    ),
    pytest.param(
        'Action: instruct_edit\nAction Input:\n{\n  "image": "img2",\n  "instruction": "make it winter"\n}',
        ToolCall("instruct_edit", '{\n  "image": "img2",\n  "instruction": "make it winter"\n}'),
        id="empty-input-then-multiline-json",
    ),
    pytest.param(
        "Action: caption_image\nAction Input:\nimg4",
        ToolCall("caption_image", "img4"),
        id="empty-input-then-bare-value",
    ),
    pytest.param(
        f"Action: caption_image\nAction Input: ```json\n{CAPTION}\n```",
        ToolCall("caption_image", CAPTION),
        id="input-fence-opened-on-keyword-line",
    ),
    # ------------------------------------------------ the tool named as a call inside the input
    pytest.param(
        "Action: caption_image\nAction Input: caption_image(img1)",
        ToolCall("caption_image", "img1"),
        id="call-in-input-positional",
    ),
    pytest.param(
        'Action: instruct_edit\nAction Input: instruct_edit(image="img2", instruction="make it winter")',
        ToolCall("instruct_edit", WINTER),
        id="call-in-input-keywords",
    ),
    pytest.param(
        f"Action: instruct_edit\nAction Input: `instruct_edit({WINTER})`",
        ToolCall("instruct_edit", WINTER),
        id="call-in-input-json-arg",
    ),
    pytest.param(
        "Action: generate_image\nAction Input: a cat(sitting) on a mat",
        ToolCall("generate_image", "a cat(sitting) on a mat"),
        id="parentheses-in-a-prompt-stay",
    ),
    # ------------------------------------------------ markdown left in a final answer
    pytest.param("Final Answer: ** 0 beats", FinalAnswer("0 beats"), id="final-leading-bold-closer"),
    pytest.param(
        "**Final Answer**: ** The sky is blue. **", FinalAnswer("The sky is blue."), id="final-bold-both-ends"
    ),
    pytest.param("AI: __img3 is ready__", FinalAnswer("__img3 is ready__"), id="balanced-markdown-kept"),
    pytest.param("Final Answer:** img2 shows a cat.", FinalAnswer("img2 shows a cat."), id="final-stuck-bold-closer"),
    # ------------------------------------------------ announcing a plan or intent: a reminder
    pytest.param("I can use the caption_image tool for this.", Reminder("announced"), id="announce-can-use"),
    pytest.param("Let me use instruct_edit to make it look like winter.", Reminder("announced"), id="announce-let-me"),
    pytest.param(
        "Thought: I'll call the detect_map tool with kind depth.", Reminder("Action"), id="announce-in-thought"
    ),
    pytest.param(
        "I now know the final answer and can provide it.", Reminder("final answer"), id="knows-answer-will-provide"
    ),
    pytest.param("Thought: I now have the final answer.", Reminder("final answer"), id="has-final-answer-thought"),
    pytest.param(
        "I used caption_image earlier: img1 shows a dog on a beach.",
        FinalAnswer("I used caption_image earlier: img1 shows a dog on a beach."),
        id="prose-mentioning-a-tool-stays-answer",
    ),
    pytest.param(
        "You can use the transform tool yourself with op=flip.",
        FinalAnswer("You can use the transform tool yourself with op=flip."),
        id="advice-to-user-stays-answer",
    ),
    # ------------------------------------------------ complaining about the format: a reminder
    pytest.param(
        "I apologize for the formatting error in my previous response.", Reminder("format"), id="apology-format"
    ),
    pytest.param("Sorry, I did not use the correct format.", Reminder("format"), id="sorry-correct-format"),
    pytest.param("I'll make sure to follow the required format from now on.", Reminder("format"), id="promise-format"),
    pytest.param(
        "The PNG format keeps transparency; JPEG does not, so img4 is saved as PNG.",
        FinalAnswer("The PNG format keeps transparency; JPEG does not, so img4 is saved as PNG."),
        id="answer-about-image-format",
    ),
    # ------------------------------------------------ Action Input with no Action: a reminder
    pytest.param(
        f"Thought: Do I need to use a tool? Yes\nAction Input: {CAPTION}", Reminder("Action:"), id="input-no-action"
    ),
    pytest.param(
        f"I will edit the picture.\nAction Input: {WINTER}", Reminder("Action:"), id="text-then-input-no-action"
    ),
    # ------------------------------------------------ a pseudo-action that is a sentence, no input
    pytest.param(
        "Thought: 3 + 4 is simple.\nAction: (No action needed, just calculation)\nAI: 7",
        FinalAnswer("7"),
        id="sentence-action-then-ai",
    ),
    pytest.param(
        "Action: (No action needed, just calculation)\nThe total is 7 images.",
        FinalAnswer("The total is 7 images."),
        id="sentence-action-then-prose",
    ),
    pytest.param(
        "Thought: Do I need to use a tool? No\nAction: just answering from the caption\nThe dog is brown.",
        FinalAnswer("The dog is brown."),
        id="sentence-action-no-tool-words",
    ),
    pytest.param("Action: (No action needed)", Reminder("answer"), id="sentence-action-alone"),
    # ------------------------------------------------ Action: None then prose that is the answer
    pytest.param(
        "Thought: Do I need to use a tool? No\nAction: None\nAction Input: The image shows two cats.",
        FinalAnswer("The image shows two cats."),
        id="none-then-input-prose",
    ),
    pytest.param(
        "Action: None. img3 is the winter version.", FinalAnswer("img3 is the winter version."), id="none-dot-prose"
    ),
    pytest.param(
        "Action: None - the picture is already black and white.",
        FinalAnswer("the picture is already black and white."),
        id="none-dash-prose",
    ),
    pytest.param(
        "Action: None\n\nThe edges are in img2.", FinalAnswer("The edges are in img2."), id="none-blank-line-prose"
    ),
    # ------------------------------------------------ vchat's own history records imitated instead of an Action
    pytest.param(
        'Tool steps:\nimg4 = transform(img3, op="flip")\nThought: Do I need to use a tool? No\nAI: Here is img4.',
        ToolCall("transform", 'img3, op="flip"'),
        id="record-imitated-before-answer",
    ),
    pytest.param(
        'img2 = detect_map(img1, kind="depth")', ToolCall("detect_map", 'img1, kind="depth"'), id="record-line-alone"
    ),
    pytest.param(
        'caption_image(img1) -> "a dog on a beach"', ToolCall("caption_image", "img1"), id="record-text-result"
    ),
    pytest.param(
        'I ran transform(img1, op="flip") for you: img2 is the mirror image.',
        FinalAnswer('I ran transform(img1, op="flip") for you: img2 is the mirror image.'),
        id="call-inside-prose-stays-answer",
    ),
    pytest.param("teleport(img1)", FinalAnswer("teleport(img1)"), id="unknown-call-line-stays-answer"),
    # ------------------------------------------------ plain prose with no markers stays an answer
    pytest.param(
        "Hello! Send me a photo to start.", FinalAnswer("Hello! Send me a photo to start."), id="plain-greeting"
    ),
    pytest.param(
        "img2 is the grayscale copy.\nimg3 is the flipped one.",
        FinalAnswer("img2 is the grayscale copy.\nimg3 is the flipped one."),
        id="plain-two-lines",
    ),
]


@pytest.mark.parametrize(("reply", "expected"), CASES)
def test_misses(reply: str, expected: object) -> None:
    if isinstance(expected, Reminder):
        with pytest.raises(ParseError) as caught:
            parse_reply(reply, TOOLS)
        message = str(caught.value)
        assert expected.hint.lower() in message.lower(), message
        assert len(message) < 400, message  # short
    else:
        assert parse_reply(reply, TOOLS) == expected


def test_case_count() -> None:
    assert len(CASES) >= 50


def test_record_call_inputs_bind() -> None:
    from vchat.chat.binding import bind_input
    from vchat.tools.registry import tool_class

    call = parse_reply('img4 = transform(img3, op="flip")', TOOLS)
    assert isinstance(call, ToolCall)
    bound = bind_input(tool_class(call.tool), call.input)  # type: ignore[arg-type]
    assert (bound["image"], bound["op"], bound["direction"]) == ("img3", "flip", "horizontal")
