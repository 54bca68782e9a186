"""Table-driven tests of the lenient ReAct reader against realistic model replies.

Where a case comes from a public bug report, the comment names the repository and issue; the reply is
lightly adapted to vchat's tools (caption_image, instruct_edit, ...) but keeps the shape that broke.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vchat.errors import ParseError
from vchat.react import FinalAnswer, ToolCall, parse_reply

TOOLS = (
    "caption_image",
    "answer_question",
    "generate_image",
    "instruct_edit",
    "canny_edges",
    "remove_object",
    "list_images",
)

WINTER = '{"image": "img2", "instruction": "make it look like winter"}'

CASES = [
    # ---------------------------------------------------------------- the documented format
    pytest.param(
        f"Thought: Do I need to use a tool? Yes\nAction: instruct_edit\nAction Input: {WINTER}",
        ToolCall("instruct_edit", WINTER),
        id="canonical-tool-call",
    ),
    pytest.param(
        "Thought: Do I need to use a tool? No\nAI: Here is the winter version, img3.",
        FinalAnswer("Here is the winter version, img3."),
        id="canonical-answer",
    ),
    pytest.param(
        "Thought: I now know the final answer\nFinal Answer: img3 is ready.",
        FinalAnswer("img3 is ready."),
        id="final-answer-keyword",
    ),
    pytest.param("Final answer: The dog is brown.", FinalAnswer("The dog is brown."), id="final-answer-lowercase"),
    pytest.param(
        "Thought: I can answer from the caption.\nAnswer: The car is red.",
        FinalAnswer("The car is red."),
        id="answer-keyword",
    ),
    pytest.param(
        "Thought: Do I need to use a tool? No\nAI: I found these objects:\n- a dog\n- a ball\n\nAnything else?\n",
        FinalAnswer("I found these objects:\n- a dog\n- a ball\n\nAnything else?"),
        id="answer-keeps-inner-newlines",
    ),
    pytest.param("Thought: Do I need to use a tool? No AI: hello", FinalAnswer("hello"), id="ai-on-the-thought-line"),
    pytest.param(
        "Thought: Do I need to use a tool? No. AI: Sure, what should I do next?",
        FinalAnswer("Sure, what should I do next?"),
        id="ai-on-the-thought-line-after-period",
    ),
    pytest.param(
        "Thought: Do I need to use a tool? Yes Action: caption_image Action Input: img1",
        ToolCall("caption_image", "img1"),
        id="whole-step-on-one-line",
    ),
    # ---------------------------------------------------------------- reasoning blocks and template tokens
    # huggingface/smolagents#1915: DeepSeek-R1 writes <think>...</think> before the step.
    pytest.param(
        "<think>\nThe user wants the outlines. canny_edges on img1 should do.\n</think>\n"
        "Thought: Do I need to use a tool? Yes\nAction: canny_edges\nAction Input: img1",
        ToolCall("canny_edges", "img1"),
        id="think-block-then-step",
    ),
    # open-webui/open-webui#9808: the R1 template opens <think> itself, so only </think> is in the reply.
    pytest.param(
        "Okay, the user greets me. No tool is needed here.\n</think>\n\n"
        "Thought: Do I need to use a tool? No\nAI: Hello! Send me an image to start.",
        FinalAnswer("Hello! Send me an image to start."),
        id="lone-closing-think",
    ),
    # ollama/ollama#8837: an empty <think> block, then a plain reply.
    pytest.param(
        "<think>\n\n</think>\n\nHello! I'm an AI assistant. How can I help you with your images?",
        FinalAnswer("Hello! I'm an AI assistant. How can I help you with your images?"),
        id="empty-think-then-plain-reply",
    ),
    pytest.param(
        "<think>\nLet me think about which tool to use. The user wants a cat picture, so maybe generate_image",
        ParseError,
        id="unclosed-think-only",
    ),
    # NVIDIA/NeMo-Agent-Toolkit#2227: the whole ReAct step inside the thinking block, nothing after it.
    pytest.param(
        "<think>\nThought: I should caption it first.\nAction: caption_image\nAction Input: img1\n</think>",
        ToolCall("caption_image", "img1"),
        id="step-inside-think",
    ),
    pytest.param("Thought: Do I need to use a tool? No\nAI: Done!<|im_end|>", FinalAnswer("Done!"), id="im-end-token"),
    # tryAGI/LangChain#230: llama3 leaks <|eot_id|> and runs on into the next turn.
    pytest.param(
        "Final Answer: img2 shows the edges.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nthanks",
        FinalAnswer("img2 shows the edges."),
        id="eot-id-then-next-turn",
    ),
    pytest.param("AI: Sure, here it is.</s>", FinalAnswer("Sure, here it is."), id="eos-s-token"),
    pytest.param("[/INST] Thought: Do I need to use a tool? No\nAI: Hi!", FinalAnswer("Hi!"), id="inst-token-prefix"),
    pytest.param(
        "AI: It is a tabby cat.<end_of_turn>\n<start_of_turn>user\nthanks",
        FinalAnswer("It is a tabby cat."),
        id="gemma-end-of-turn",
    ),
    pytest.param(
        "<|assistant|>\nThought: Do I need to use a tool? Yes\nAction: generate_image\n"
        "Action Input: a red bicycle<|end|>",
        ToolCall("generate_image", "a red bicycle"),
        id="phi3-assistant-and-end",
    ),
    pytest.param(
        "Action: caption_image\nAction Input: img4<|endoftext|>",
        ToolCall("caption_image", "img4"),
        id="endoftext-token",
    ),
    # ---------------------------------------------------------------- hallucinated observations, action vs answer
    # langchain-ai/langchain#20704: llama3 writes the Observation itself and goes on.
    pytest.param(
        "Thought: I need to find out what the sign says.\n\nAction: answer_question\n"
        'Action Input: "img1, what does the sign say?"\nObservation: The sign says "Open 24 hours".\n\n'
        "Thought: I now",
        ToolCall("answer_question", "img1, what does the sign say?"),
        id="llama3-own-observation",
    ),
    # langchain-ai/langchain#5601: an action, a made-up result and a final answer in one reply.
    pytest.param(
        "Thought: I should detect the edges.\nAction: canny_edges\nAction Input: ```\nimg1\n```\n"
        "Observation: img2 was created\nThought: I now know the final answer\nFinal Answer: The edges are in img2.",
        ToolCall("canny_edges", "img1"),
        id="action-observation-final-answer",
    ),
    pytest.param(
        "Thought: The car must go.\nAction: remove_object\nAction Input: img1, the car\n"
        "Final Answer: I removed the car.",
        ToolCall("remove_object", "img1, the car"),
        id="action-and-final-answer-action-wins",
    ),
    # run-llama/llama_index#13459: an "Answer:" line after the action must not win.
    pytest.param(
        "Thought: I need a caption.\nAction: caption_image\nAction Input: img2\nAnswer: It is a beach.",
        ToolCall("caption_image", "img2"),
        id="action-then-answer-line",
    ),
    pytest.param(
        "Observation: img2 was created.\nThought: Do I need to use a tool? No\nAI: Here is img2.",
        FinalAnswer("Here is img2."),
        id="stray-observation-before-step",
    ),
    pytest.param(
        "Thought: Do I need to use a tool? No\nAI: It is a cat.\n\nHuman: and the other one?\nAI: A dog.",
        FinalAnswer("It is a cat."),
        id="answer-then-imagined-human-turn",
    ),
    # ---------------------------------------------------------------- keywords in other dress
    pytest.param(
        "**Thought:** I need a caption.\n**Action:** caption_image\n**Action Input:** img1",
        ToolCall("caption_image", "img1"),
        id="bold-colon-inside",
    ),
    pytest.param(
        "**Action**: canny_edges\n**Action Input**: img2", ToolCall("canny_edges", "img2"), id="bold-colon-outside"
    ),
    pytest.param(
        "### Thought\nI need the edges.\n### Action\ncanny_edges\n### Action Input\nimg1",
        ToolCall("canny_edges", "img1"),
        id="markdown-headers",
    ),
    pytest.param(
        "THOUGHT: I will draw it.\nACTION: generate_image\nACTION INPUT: a lighthouse at dusk",
        ToolCall("generate_image", "a lighthouse at dusk"),
        id="uppercase-keywords",
    ),
    pytest.param(
        "action: caption_image\naction input: img1", ToolCall("caption_image", "img1"), id="lowercase-keywords"
    ),
    pytest.param(
        "Action: caption_image\nAction_Input: img1", ToolCall("caption_image", "img1"), id="action-underscore-input"
    ),
    pytest.param(
        "Action: caption_image\nActionInput: img1", ToolCall("caption_image", "img1"), id="action-input-one-word"
    ),
    pytest.param(
        "1. Thought: I need a caption.\n2. Action: caption_image\n3. Action Input: img1",
        ToolCall("caption_image", "img1"),
        id="numbered-lines",
    ),
    pytest.param(
        "Thought 1: I need to read the sign.\nAction 1: answer_question[img1, what year is on the sign?]",
        ToolCall("answer_question", "img1, what year is on the sign?"),
        id="react-paper-numbered-bracket-call",
    ),
    pytest.param(
        "Thought 3: The sign says 1998.\nAction 3: Finish[The sign says 1998.]",
        FinalAnswer("The sign says 1998."),
        id="react-paper-finish",
    ),
    pytest.param(
        "**Final Answer:** The photo shows two dogs.", FinalAnswer("The photo shows two dogs."), id="bold-final-answer"
    ),
    pytest.param(
        "**Final Answer:** **img3** is the *winter* version.",
        FinalAnswer("**img3** is the *winter* version."),
        id="markdown-inside-answer-kept",
    ),
    pytest.param(
        "**Action: canny_edges**\n**Action Input: img1**", ToolCall("canny_edges", "img1"), id="bold-whole-line"
    ),
    # ---------------------------------------------------------------- input shapes
    # langchain-ai/langchain#3365: LLaMA puts a newline after "Action:" and "Action Input:".
    pytest.param(
        "Thought: I need the edges.\nAction:\ncanny_edges\nAction Input:\nimg1",
        ToolCall("canny_edges", "img1"),
        id="values-on-next-line",
    ),
    # langchain-ai/langchain#1645: a multi-line Action Input.
    pytest.param(
        "Action: generate_image\nAction Input: a cozy cabin\nin a snowy forest, at night",
        ToolCall("generate_image", "a cozy cabin\nin a snowy forest, at night"),
        id="multiline-input",
    ),
    # run-llama/llama_index#9060: pretty-printed JSON input over several lines.
    pytest.param(
        'Action: instruct_edit\nAction Input: {\n  "image": "img2",\n  "instruction": "make it look like winter"\n}',
        ToolCall("instruct_edit", '{\n  "image": "img2",\n  "instruction": "make it look like winter"\n}'),
        id="multiline-json-input",
    ),
    pytest.param('Action: caption_image\nAction Input: "img1"', ToolCall("caption_image", "img1"), id="quoted-input"),
    pytest.param(
        "Action: caption_image\nAction Input: `img1`", ToolCall("caption_image", "img1"), id="backticked-input"
    ),
    pytest.param(
        'Action: caption_image\nAction Input:\n```json\n{"image": "img1"}\n```',
        ToolCall("caption_image", '{"image": "img1"}'),
        id="fenced-input",
    ),
    pytest.param(
        "Action: generate_image\nAction Input: 'a cat wearing a hat'",
        ToolCall("generate_image", "a cat wearing a hat"),
        id="single-quoted-input",
    ),
    pytest.param(
        'Action: remove_object\nAction Input: "img1", "the red car"',
        ToolCall("remove_object", '"img1", "the red car"'),
        id="quoted-parts-kept",
    ),
    # langchain-ai/langchain#3438: a tool that takes no input, and no Action Input line.
    pytest.param(
        "Thought: Do I need to use a tool? Yes\nAction: list_images",
        ToolCall("list_images", ""),
        id="tool-without-input",
    ),
    # ---------------------------------------------------------------- JSON action blobs
    pytest.param(
        '```json\n{\n  "action": "caption_image",\n  "action_input": "img1"\n}\n```',
        ToolCall("caption_image", "img1"),
        id="fenced-json-blob",
    ),
    pytest.param(
        '{"action": "generate_image", "action_input": "a castle on a hill"}',
        ToolCall("generate_image", "a castle on a hill"),
        id="bare-json-blob",
    ),
    pytest.param(
        'Thought: I need edges.\nAction: {"action": "canny_edges", "action_input": "img1"}',
        ToolCall("canny_edges", "img1"),
        id="action-followed-by-json-blob",
    ),
    pytest.param(
        '{"action": "instruct_edit", "action_input": {"image": "img2", "instruction": "make it look like winter"}}',
        ToolCall("instruct_edit", json.dumps({"image": "img2", "instruction": "make it look like winter"})),
        id="json-blob-object-input",
    ),
    pytest.param(
        '{"name": "remove_object", "arguments": {"image": "img1", "object": "car"}}',
        ToolCall("remove_object", json.dumps({"image": "img1", "object": "car"})),
        id="json-name-arguments",
    ),
    pytest.param(
        '{"tool": "caption_image", "tool_input": "img2"}',
        ToolCall("caption_image", "img2"),
        id="json-tool-tool-input",
    ),
    pytest.param(
        '{"function": {"name": "generate_image", "arguments": "{\\"prompt\\": \\"a cat\\"}"}}',
        ToolCall("generate_image", '{"prompt": "a cat"}'),
        id="json-openai-function-style",
    ),
    pytest.param(
        '```json\n{"action": "Final Answer", "action_input": "The image shows a cat."}\n```',
        FinalAnswer("The image shows a cat."),
        id="json-final-answer",
    ),
    pytest.param(
        '{"name": "final_answer", "arguments": {"answer": "img3 is ready."}}',
        FinalAnswer("img3 is ready."),
        id="json-final-answer-tool-with-answer-field",
    ),
    # langchain-ai/langchainjs#1203: a JSON action whose input carries a markdown code block.
    pytest.param(
        '{"action": "generate_image", "action_input": "The tool input ```json\\n{\\"yes\\":true}\\n```"}',
        ToolCall("generate_image", 'The tool input ```json\n{"yes":true}\n```'),
        id="json-input-with-markdown",
    ),
    # langchain-ai/langchain#17186: no newline after the opening backticks.
    pytest.param(
        '```json{"action": "caption_image", "action_input": "img1"}```',
        ToolCall("caption_image", "img1"),
        id="json-blob-glued-to-fence",
    ),
    pytest.param(
        'Thought: I should draw it.\n```json\n{"action": "generate_image", "action_input": "a red fox"}\n```',
        ToolCall("generate_image", "a red fox"),
        id="thought-then-json-blob",
    ),
    pytest.param(
        'The metadata of img1 is:\n{"name": "img1", "size": 512}',
        FinalAnswer('The metadata of img1 is:\n{"name": "img1", "size": 512}'),
        id="json-data-in-plain-reply",
    ),
    pytest.param(
        'AI: Here is the call I would make: {"action": "caption_image", "action_input": "img1"}',
        FinalAnswer('Here is the call I would make: {"action": "caption_image", "action_input": "img1"}'),
        id="json-inside-answer-is-answer",
    ),
    # ---------------------------------------------------------------- tool names as models write them
    pytest.param(
        "Action: `caption_image`\nAction Input: img1", ToolCall("caption_image", "img1"), id="name-in-backticks"
    ),
    pytest.param('Action: "caption_image"\nAction Input: img1', ToolCall("caption_image", "img1"), id="name-quoted"),
    pytest.param(
        "Action: [generate_image]\nAction Input: a blue horse",
        ToolCall("generate_image", "a blue horse"),
        id="name-in-brackets",
    ),
    pytest.param("Action: canny_edges.\nAction Input: img1", ToolCall("canny_edges", "img1"), id="name-with-period"),
    pytest.param(
        "Action: I will use the canny_edges tool\nAction Input: img1",
        ToolCall("canny_edges", "img1"),
        id="name-in-a-sentence",
    ),
    pytest.param(
        "Action: Use instruct_edit to make the sky purple\nAction Input: img1, make the sky purple",
        ToolCall("instruct_edit", "img1, make the sky purple"),
        id="use-tool-to-do",
    ),
    pytest.param(
        'Action: generate_image(prompt="a cat")',
        ToolCall("generate_image", '{"prompt": "a cat"}'),
        id="call-syntax-keyword-args",
    ),
    pytest.param('Action: caption_image("img3")', ToolCall("caption_image", "img3"), id="call-syntax-positional"),
    pytest.param("Action: Caption_Image\nAction Input: img1", ToolCall("caption_image", "img1"), id="name-other-case"),
    pytest.param(
        "Action: upscale_image\nAction Input: img1", ToolCall("upscale_image", "img1"), id="unknown-tool-kept"
    ),
    pytest.param(
        "Thought: Do I need to use a tool? Yes\nAction: the tool to use, should be one of [caption_image, "
        "generate_image, canny_edges]\nAction Input: img1",
        ParseError,
        id="echoed-tool-list",
    ),
    pytest.param(
        "Action: Final Answer\nAction Input: The image is img3.",
        FinalAnswer("The image is img3."),
        id="final-answer-as-action",
    ),
    # ---------------------------------------------------------------- "no tool"
    # crewAIInc/crewAI#4186: "Action: None" and nothing to say.
    pytest.param(
        "Thought: The user is only greeting me; no tool is needed.\nAction: None (direct response required)",
        ParseError,
        id="action-none-alone",
    ),
    pytest.param(
        "Thought: Do I need to use a tool? No\nAction: None\nAI: Hi! Send me a picture.",
        FinalAnswer("Hi! Send me a picture."),
        id="action-none-then-answer",
    ),
    pytest.param(
        "Action: N/A\nHello! I can describe, generate and edit images.",
        FinalAnswer("Hello! I can describe, generate and edit images."),
        id="action-na-then-text",
    ),
    pytest.param(
        "Hello there! What would you like to do?\nThought: A greeting, so no tool.\nAction: no tool",
        FinalAnswer("Hello there! What would you like to do?"),
        id="action-no-tool-after-text",
    ),
    # ---------------------------------------------------------------- plain text and unusable replies
    # langchain-ai/langchain#1474: ChatGPT answers without the AI: prefix.
    pytest.param(
        "The image shows a golden retriever playing in the snow.",
        FinalAnswer("The image shows a golden retriever playing in the snow."),
        id="plain-answer",
    ),
    pytest.param(
        "Sure!\n\nimg1 is a beach at sunset.\nimg2 is a snowy street.",
        FinalAnswer("Sure!\n\nimg1 is a beach at sunset.\nimg2 is a snowy street."),
        id="plain-multiline-answer",
    ),
    pytest.param(
        "Thought: Do I need to use a tool? No\nThe image shows a red car.",
        FinalAnswer("The image shows a red car."),
        id="answer-under-no-decision",
    ),
    # chenfei-wu/TaskMatrix#324 (Visual ChatGPT): "Could not parse LLM output: `Yes`".
    pytest.param("Yes", ParseError, id="visual-chatgpt-yes"),
    # xuwenhao/geektime-ai-course#7: the decision line alone.
    pytest.param("Do I need to use a tool? No", ParseError, id="decision-only"),
    # langchain-ai/langchain#7480
    pytest.param("Thought: Do I need to use a tool? No", ParseError, id="thought-decision-only"),
    pytest.param("Thought: Do I need to use a tool? Yes", ParseError, id="thought-decision-yes-only"),
    pytest.param("I now know the final answer", ParseError, id="knows-final-answer-only"),
    # AILab-CVC/GPT4Tools#17: an empty completion.
    pytest.param("", ParseError, id="empty"),
    pytest.param("   \n\t\n  ", ParseError, id="whitespace"),
    # crewAIInc/crewAI#103: the model parrots the format error back instead of replying.
    pytest.param("Invalid Format: Missing 'Action:' after 'Thought:'", ParseError, id="parrots-format-error"),
    pytest.param("I'm sorry, but I cannot follow this format.", ParseError, id="format-complaint"),
    pytest.param(
        "The file you sent has an invalid format, so I could not open it.",
        FinalAnswer("The file you sent has an invalid format, so I could not open it."),
        id="answer-about-a-file-format",
    ),
    pytest.param(
        "The shelf in img2 is missing action figures; I could not parse the label either.",
        FinalAnswer("The shelf in img2 is missing action figures; I could not parse the label either."),
        id="answer-that-sounds-like-a-complaint",
    ),
    pytest.param("Thought: I should use the caption_image tool on img1.", ParseError, id="thought-only"),
    pytest.param("Thought: Do I need to use a tool? No\nAI:", ParseError, id="empty-ai-line"),
]


@pytest.mark.parametrize(("reply", "expected"), CASES)
def test_parse_reply(reply: str, expected: object) -> None:
    if expected is ParseError:
        with pytest.raises(ParseError):
            parse_reply(reply, TOOLS)
    else:
        assert parse_reply(reply, TOOLS) == expected


TOOL_NAME_CASES = [
    pytest.param(
        "Action: Use the magic tool\nAction Input: x", (), ToolCall("Use", "x"), id="no-tool-names-first-token"
    ),
    pytest.param(
        'Action: generate_image(prompt="a cat")',
        (),
        ToolCall("generate_image", '{"prompt": "a cat"}'),
        id="no-tool-names-call-syntax",
    ),
    pytest.param("Action: canny\nAction Input: img1", ("canny", "canny_edges"), ToolCall("canny", "img1"), id="exact"),
    pytest.param(
        "Action: run canny_edges on it\nAction Input: img1",
        ("canny", "canny_edges"),
        ToolCall("canny_edges", "img1"),
        id="longest-name-mentioned",
    ),
    pytest.param(
        "Action: Search the internet for a photo of a lynx\nAction Input: lynx",
        ("Search the internet", "caption_image"),
        ToolCall("Search the internet", "lynx"),
        id="multi-word-tool-name",
    ),
]


@pytest.mark.parametrize(("reply", "tools", "expected"), TOOL_NAME_CASES)
def test_tool_name_mapping(reply: str, tools: tuple[str, ...], expected: ToolCall) -> None:
    assert parse_reply(reply, tools) == expected


def test_error_message_is_a_format_reminder() -> None:
    with pytest.raises(ParseError) as caught:
        parse_reply("Yes", TOOLS)
    message = str(caught.value)
    assert message.startswith("Could not read your reply:")
    assert "Action: TOOL\nAction Input: INPUT" in message
    assert "Thought: Do I need to use a tool? No\nAI: your answer" in message
    assert "caption_image" not in message and len(message) < 400  # short: the system prompt lists the tools


# ---------------------------------------------------------------- properties

_INPUT_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=60
).filter(lambda s: s.strip() and s.strip()[0] not in "\"'`{[" and ":" not in s and "<" not in s)


@settings(derandomize=True, max_examples=500)
@given(st.text(max_size=300))
def test_any_text_gives_a_step_or_a_parse_error(text: str) -> None:
    try:
        result = parse_reply(text, TOOLS)
    except ParseError:
        return
    assert isinstance(result, ToolCall | FinalAnswer)


@settings(derandomize=True, max_examples=300)
@given(st.sampled_from(TOOLS), _INPUT_TEXT)
def test_canonical_tool_call_round_trips(tool: str, tool_input: str) -> None:
    reply = f"Thought: Do I need to use a tool? Yes\nAction: {tool}\nAction Input: {tool_input}"
    assert parse_reply(reply, TOOLS) == ToolCall(tool, tool_input.strip())


@settings(derandomize=True, max_examples=300)
@given(_INPUT_TEXT)
def test_canonical_answer_round_trips(answer: str) -> None:
    reply = f"Thought: Do I need to use a tool? No\nAI: {answer}"
    assert parse_reply(reply, TOOLS) == FinalAnswer(answer.strip())
