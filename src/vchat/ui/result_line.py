"""A tool's result as one short line for the chat, cut in the middle so that the seed it ends with survives."""

from __future__ import annotations

import re

from vchat.ui.safe import safe_line

# The clause that makes a picture reproducible; it ends most generation results.
_SEED = re.compile(r"[;,(]?\s*\bseed\s*[=:]?\s*\d+\)?")


def result_line(text: str, limit: int = 160) -> str:
    """`text` made safe and at most `limit` characters; a cut keeps the last `seed N` clause whole."""
    whole = safe_line(text)
    if len(whole) <= limit:
        return whole
    seeds = list(_SEED.finditer(whole))
    if not seeds:
        return safe_line(text, limit)
    tail = whole[seeds[-1].start() :].strip()
    keep = max(0, limit - len(tail) - 2)
    return whole[:keep].rstrip(" ;,") + "… " + tail
