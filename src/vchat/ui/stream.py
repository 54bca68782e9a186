"""Pick the user-facing answer out of a streamed ReAct reply, so it can be shown as it arrives."""

from __future__ import annotations

import re

# Where the answer starts in the format the system prompt asks for (and its usual variants).
_MARKER = re.compile(r"(?:^|\n)\s*\**(?:AI|Final Answer)\**\s*:\**[ \t]*", re.IGNORECASE)
_HOLD = 24  # keep back this many chars: a stop string or a chat token may be forming at the end


class AnswerStreamer:
    """Feed raw chunks; get back only the text after `AI:` / `Final Answer:`, as it arrives."""

    def __init__(self) -> None:
        self.buffer = ""
        self.start: int | None = None
        self.emitted = 0
        self.active = False  # True once any answer text was emitted

    def feed(self, chunk: str) -> str:
        """Add a chunk; return answer text that is now safe to print."""
        self.buffer += chunk
        if self.start is None:
            # An action anywhere means this reply is a tool call: stream nothing.
            if re.search(r"(?:^|\n)\s*\**Action\**\s*:", self.buffer, re.IGNORECASE):
                return ""
            match = _MARKER.search(self.buffer)
            if match is None:
                return ""
            begin = match.end()
            while begin < len(self.buffer) and self.buffer[begin] in " \t*":
                begin += 1
            if begin >= len(self.buffer):
                return ""  # the marker may still grow (`**`, spaces): wait for the answer itself
            self.start = self.emitted = begin
        safe_end = max(self.emitted, len(self.buffer) - _HOLD)
        text = self.buffer[self.emitted : safe_end]
        if "<" in text:  # do not print half of a chat-template token such as <|im_end|>
            text = text[: text.index("<")]
        self.emitted += len(text)
        if text:
            self.active = True
        return text

    def remainder(self, final: str) -> str:
        """What is left to print of the final answer `final`, given what was streamed of it already.

        Printing the streamed text and then this gives exactly `final`: no character twice (the
        streamed part may end in a space the parser's answer also has) and none lost.
        """
        shown = self.buffer[self.start or 0 : self.emitted]
        if final.startswith(shown):
            return final[len(shown) :]
        core = shown.rstrip()
        if core and final.startswith(core):
            # The answer was trimmed where the stream had whitespace: that whitespace is on screen already.
            return final[len(core) :].lstrip()
        return "\n" + final  # the parser changed the text: print it whole on a line of its own

    def reset(self) -> None:
        """Start over for the next reply of the same turn."""
        self.buffer = ""
        self.start = None
        self.emitted = 0
        self.active = False
