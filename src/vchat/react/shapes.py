"""The table of recognised shapes: every pattern and word list the ReAct reader matches replies against."""

from __future__ import annotations

import re

# --------------------------------------------------------------------------------------------- around a reply

# Chat-template control tokens that some servers leave in the text (<|im_end|>, <|eot_id|>,
# DeepSeek's full-width <｜end▁of▁sentence｜>, Llama-2's [/INST], Gemma's <end_of_turn> ...).
TEMPLATE_TOKEN = re.compile(
    r"<\|[^|<>\n]{1,40}\|>|<｜[^｜<>\n]{1,40}｜>|</?s>|\[/?INST\]|<(?:start|end)_of_turn>|<eos>|<bos>",
    re.IGNORECASE,
)
# Tokens that end the model's turn: whatever follows is the model imagining the next turn.
END_OF_TURN = re.compile(
    r"<\|(?:im_end|eot_id|eom_id|end|endoftext|end_of_text)\|>|<｜end[^｜<>\n]{0,30}｜>|</s>|<end_of_turn>|<eos>",
    re.IGNORECASE,
)
# A role name written right after a start-of-turn token ("<|im_start|>assistant", "<start_of_turn>model").
ROLE_HEADER = re.compile(
    r"(?:<\|im_start\|>|<start_of_turn>|<\|start_header_id\|>)[ \t]*(?:assistant|model|user|system)?"
    r"[ \t]*(?:<\|end_header_id\|>)?[ \t]*\n?",
    re.IGNORECASE,
)
# Reasoning blocks of R1/Qwen3-style models; <thinking>/<reasoning> are rarer spellings.
THINK_BLOCK = re.compile(r"<(think|thinking|reasoning)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
THINK_CLOSE = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)
THINK_OPEN = re.compile(r"<(?:think|thinking|reasoning)>", re.IGNORECASE)
# A reply entirely wrapped in one code fence (some models fence the whole Thought/Action block).
WHOLE_FENCE = re.compile(r"\A\s*```[\w+-]*[ \t]*\n(.*?)\n[ \t]*```\s*\Z", re.DOTALL)
BARE_FENCE_LINE = re.compile(r"^[ \t]*```[\w+-]*[ \t]*$")
# "Do I need to use a tool? No AI: hi": move what follows the yes/no decision to its own line.
DECISION_TAIL = re.compile(r"(\b(?:do|no) i need to use a tool\s*\?[ \t]*(?:yes|no)\b[.!]?)[ \t]+(?=\S)", re.IGNORECASE)
# "Action: x Action Input: y" on one line: split before a later keyword. Capitalised keywords only,
# and only on Thought/Action lines, so ordinary prose is not cut up.
INLINE_KEYWORD = re.compile(
    r"(?<=\S)[ \t]+(?=(?:\*\*)?(?:Action[ _]?Input|Action|Final Answer|Observation)(?:\*\*)?[ \t]*:)"
)
THOUGHT_OR_ACTION_LINE = re.compile(r"^[ \t]*(?:\*\*)?(?:Thought|Action)\b", re.IGNORECASE)
# "Action: caption_image, Input: img1" (or "; Input:", " - Input:"): the separator goes, the input gets its line.
ACTION_NAME_LINE = re.compile(r"^[ \t]*(?:\*\*)?Action(?:\*\*)?[ \t]*:", re.IGNORECASE)
INLINE_INPUT = re.compile(
    r"[ \t]*(?:[,;]|[ \t][-–—])[ \t]*(?=(?:\*\*)?(?:Action[ _]?)?Input(?:\*\*)?[ \t]*:)", re.IGNORECASE
)

# --------------------------------------------------------------------------------------------- keyword lines

# One keyword line, however dressed: "Action:", "**Action:**", "**Action**:", "### Action", "1. Thought:",
# "ACTION:", "Action Input" / "Action_Input" / "ActionInput", "Action 2:" (ReAct paper), "FinalAnswer:".
KEYWORD_LINE = re.compile(
    r"""^[ \t]*
    (?P<header>\#{1,6}[ \t]*)?          # markdown header
    (?:[-*+>][ \t]+)?                   # bullet or quote mark
    (?:\d{1,2}[.)][ \t]*)?              # numbering
    (?P<bold>\*{1,2}|_{2})?             # bold/italic opening
    (?P<kw>final[ \t_-]*answer|action[ \t_-]*(?:\d+[ \t]*)?input|thoughts?|action|observations?
        |question|answer|ai|input|human|user)
    [ \t]*\d*[ \t]*                     # step number
    (?(bold)(?:\*{1,2}|_{2})?)[ \t]*    # bold closed before the colon
    (?P<colon>[:：])?
    [ \t]*(?(bold)(?:\*{1,2}|_{2})?)    # bold closed after the colon (only if it was opened)
    (?P<rest>.*)$                       # the value (stripped in code: a lazy .*? here backtracks)""",
    re.IGNORECASE | re.VERBOSE,
)
# What each keyword word stands for; "stop" ends the reply (the model imagining the user's turn).
KINDS = {
    "thought": "thought",
    "thoughts": "thought",
    "action": "action",
    "observation": "observation",
    "observations": "observation",
    "question": "question",
    "human": "stop",
    "user": "stop",
    "ai": "final",
    "answer": "final",
    "input": "bare_input",
}

# --------------------------------------------------------------------------------------------- actions

NONE_ACTION = re.compile(
    r"^(?:none|n/?a|null|nil|nothing|not[ _-]applicable|no(?:[ _-]+(?:tools?|actions?)(?:[ _-]+needed)?)?)\b",
    re.IGNORECASE,
)
# Pseudo-actions that mean "answer the user" when no real tool has that name.
ANSWER_ACTIONS = frozenset(
    {"final_answer", "finalanswer", "final", "finish", "answer", "respond", "response", "reply", "speak", "say", "ai"}
)
# The one field of an answer-action's object input that holds the text: {"answer": "..."}.
ANSWER_FIELDS = ("answer", "final_answer", "text", "response", "output", "content", "message")
# "Do I need to use a tool? No" at the start of a Thought; what follows a "No" is the answer.
DECISION = re.compile(r"^\W*(?:do|no)\s+i\s+need\s+to\s+use\s+a\s+tool\s*\??\s*(?P<answer>yes|no)\b[.!]?", re.I)
# "generate_image(prompt='a cat')", "caption_image (img1)", "Search[query]" (ReAct paper), "Finish[answer]".
CALL = re.compile(
    r"^[`*\"']*(?P<name>[A-Za-z_][\w.\- ]*?)[`*\"']*\s*(?:\((?P<paren>.*)\)|\[(?P<bracket>.*)\])\s*[.;,]?$",
    re.DOTALL,
)
CALL_MAX_LEN = 2000  # longer action lines are prose; this also bounds the regex's backtracking
# A line in the shape of vchat's own history records ("img3 = instruct_edit(img2, ...)"), which a model
# may imitate instead of writing Action lines: the call it wants run (a text result "-> ..." may follow).
RECORD_LINE = re.compile(
    r"^[ \t]*(?:img\d+(?:[ \t]*,[ \t]*img\d+)*[ \t]*=[ \t]*)?(?P<call>[A-Za-z_]\w*[ \t]*\(.*\))[ \t]*(?:->.*)?$"
)

# --------------------------------------------------------------------------------------------- inputs

# The tail of an "Observation" keyword cut short by a stop sequence ("...\nObserv").
CUT_OBSERVATION = re.compile(r"\n[ \t]*(?:\*\*)?obs(?:e(?:r(?:v(?:a(?:t(?:i(?:o(?:n)?)?)?)?)?)?)?)?[ \t]*\Z", re.I)
QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "“": "”"}

# --------------------------------------------------------------------------------------------- JSON blobs

# Where a JSON action blob may start: at the start of a line, maybe right after a fence opener.
BLOB_START = re.compile(r"^[ \t]*(?:```[\w-]*[ \t]*)?(?=[{\[])", re.MULTILINE)
NAME_KEYS = ("action", "tool", "tool_name", "action_name", "function", "name")
INPUT_KEYS = ("action_input", "tool_input", "arguments", "args", "parameters", "params", "input", "inputs")
WRAPPER_KEYS = ("tool_call", "tool_calls", "function_call", "tool_use", "call")
