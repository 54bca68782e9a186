"""Lenient reader of the model's text ReAct replies: one tool call or one final answer.

The package splits the work by job: `shapes` holds the table of recognised shapes (the
patterns), `clean` strips what surrounds a reply, `sections` cuts it at keyword lines,
`names` maps action text to a tool, `inputs` unwraps an input, `blobs` reads JSON action
blobs, `actions` turns an Action section into a step, `reminders` tells prose from
non-answers, and `reader` decides what one reply means. Callers import from here.
"""

from __future__ import annotations

from vchat.react.reader import parse_reply
from vchat.react.result import FORMAT_REMINDER, FinalAnswer, ToolCall

__all__ = ["FORMAT_REMINDER", "FinalAnswer", "ToolCall", "parse_reply"]
