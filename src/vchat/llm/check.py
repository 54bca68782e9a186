"""`vchat doctor`'s language-model rows: which backend would be used, whether it answers, what to do if not."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from vchat.config import Settings, is_local_url
from vchat.errors import VchatError
from vchat.llm.base import LLM
from vchat.llm.switch import is_builtin

# Seconds the one test request may take; a model that needs longer to say "ok" is not usable anyway.
CHECK_TIMEOUT = 15.0
# The built-in planner loads its weights into this process first, which takes longer than a server's reply.
BUILTIN_TIMEOUT = 120.0
_PROMPT = "Reply with the single word: ok"


def _why(settings: Settings, llm: LLM) -> str:
    """How select_llm came to its choice, in the user's terms."""
    if settings.llm.startswith("scripted:"):
        return "llm = scripted (replies from a file)"
    if settings.llm.startswith("local"):
        return "llm = local"
    if is_builtin(llm):
        return "no API key or local server found"
    if settings.base_url:
        return "base_url is set"
    if settings.api_key:
        return "OPENAI_API_KEY is set"
    if settings.llm == "openai":
        return "llm = openai"
    return "found running on this machine"


def llm_rows(settings: Settings, timeout: float = CHECK_TIMEOUT) -> list[tuple[str, str]]:
    """(label, text) rows: the backend and why, and whether one short request gets an answer in time."""
    from vchat.llm.select import connect_hint, select_llm

    # A copy: the check's shorter timeout must not leak into the caller's settings.
    quick = dataclasses.replace(settings, models=dict(settings.models), timeout=min(settings.timeout, timeout))
    try:
        llm = select_llm(quick)
    except VchatError as exc:
        return [("language model", f"error: {exc}")]
    if llm is None:
        if settings.llm == "none":
            return [("language model", "none (llm = none): only /tool and `vchat run --tool` work")]
        return [("language model", f"none found; to chat, {connect_hint()}")]
    rows = [("language model", f"{llm.name} ({_why(settings, llm)})")]
    if is_builtin(llm):
        missing = _planner_missing(llm)
        if missing:
            # Trying it would start a download of a few GB: say how to get it instead.
            rows.append(("answers", f"not tried: {missing}"))
            return rows
        timeout = max(timeout, BUILTIN_TIMEOUT)
    reply, failure, seconds = _ask(llm, timeout)
    if failure is not None:
        fix = _fix(llm)
        if "server running" in fix:  # the backend's own message asks it too: say it once, with the curl line
            failure = failure.replace(" (is the server running?)", "")
        rows.append(("answers", f"no: {failure}; {fix}"))
    elif not reply.strip():
        rows.append(("answers", f"no: an empty reply after {seconds:.1f}s; {_fix(llm)}"))
    else:
        rows.append(("answers", f"yes, in {seconds:.1f}s"))
    return rows


def _planner_missing(llm: Any) -> str | None:
    """None when the built-in planner's files are on this machine, else what to run to get them."""
    from vchat.runtime import hub
    from vchat.runtime.catalog import component

    models = llm.manager.models
    for key in ("planner", "planner.processor"):
        spec = component(key)
        if hub.find_files(spec, hub.source_for(spec, models))[1]:
            ref = models.get("planner", "the planner")
            return f"{ref} is not downloaded yet; `vchat models pull planner` fetches it"
    return None


def _ask(llm: LLM, timeout: float) -> tuple[str, str | None, float]:
    """One short request under a hard deadline: (reply, failure or None, seconds).

    The request runs in a daemon thread, so neither client retries nor a server that never
    answers can keep `vchat doctor` waiting past the deadline.
    """
    parts: list[str] = []
    failure: list[str] = []

    def request() -> None:
        try:
            for chunk in llm.complete([{"role": "user", "content": _PROMPT}]):
                parts.append(chunk)
                if sum(map(len, parts)) > 200:
                    break  # enough to know it answers; a chatty model need not finish
        except VchatError as exc:
            failure.append(str(exc))
        except Exception as exc:  # the check reports every fault as a row; it must not crash doctor
            failure.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    worker = threading.Thread(target=request, name="vchat-doctor-llm", daemon=True)
    worker.start()
    worker.join(timeout)
    seconds = time.perf_counter() - started
    if worker.is_alive():
        return "", f"no reply within {timeout:g}s", seconds
    return "".join(parts), (failure[0] if failure else None), seconds


def _fix(llm: LLM) -> str:
    base_url = llm.base_url
    if base_url is not None and is_local_url(base_url):
        return "is the server running, with that model loaded? Check with `curl " + base_url + "/models`"
    if isinstance(base_url, str):
        return "check OPENAI_API_KEY, the model name (--model) and the network"
    return "`vchat --help` shows --llm, --base-url and --model"
