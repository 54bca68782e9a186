"""When a failed request to an OpenAI-compatible server is worth sending again, and after how long.

vchat retries itself instead of leaving it to the `openai` client, so that one clock (the
reply deadline) bounds the whole model call: every attempt's timeout and every wait between
attempts come out of the time that is left. The rules follow the client's own (3.x): a
timeout, a lost connection, HTTP 408, 409, 429 and 5xx are retried unless the server says
`x-should-retry: false`; the wait is the server's `retry-after-ms` / `retry-after` when
given (up to two minutes), else 0.5 s doubling to at most 8 s, less up to a quarter at random.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from typing import Any

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 120.0  # a server asking for a longer wait is not retried
RETRY_STATUSES = frozenset({408, 409, 429})


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked to wait (`retry-after-ms`, `retry-after` in seconds or as a date), if it did."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            delay = float(value)
        except ValueError:
            continue
        return delay / divisor if math.isfinite(delay) else MAX_RETRY_AFTER + 1
    date = headers.get("retry-after")
    try:
        parsed = email.utils.parsedate_tz(date) if date else None
        return None if parsed is None else float(email.utils.mktime_tz(parsed) - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def wait_before_retry(exc: BaseException, attempt: int, openai: Any) -> float | None:
    """Seconds to wait before sending again after `exc` (the `attempt`-th retry, from 0), or None: do not retry."""
    if isinstance(exc, openai.APIStatusError):
        headers = getattr(exc.response, "headers", None)
        asked = retry_after(headers)
        if asked is not None and asked > MAX_RETRY_AFTER:
            return None
        verdict = headers.get("x-should-retry") if headers is not None else None
        if verdict == "false":
            return None
        status = exc.status_code
        if verdict != "true" and status not in RETRY_STATUSES and status < 500:
            return None
        if asked is not None and asked > 0:
            return asked
    elif not isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one of these
        return None
    return min(INITIAL_DELAY * 2.0**attempt, MAX_DELAY) * (1 - 0.25 * random.random())
