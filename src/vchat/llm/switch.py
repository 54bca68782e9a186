"""`/model` in the chat: another model, another server, the built-in planner, or none, without a restart."""

from __future__ import annotations

import dataclasses

from vchat.config import Settings, is_local_url, url_problem
from vchat.errors import VchatError
from vchat.llm.base import LLM

USAGE = "/model NAME · /model URL [NAME] · /model local · /model none"


def is_builtin(llm: LLM | None) -> bool:
    """True for the in-process planner (vchat.llm.local), which needs no server."""
    return llm is not None and type(llm).__module__ == "vchat.llm.local"


def _is_url(text: str) -> bool:
    return "://" in text


def _looks_like_address(text: str) -> bool:
    """`localhost:11434/v1`, `127.0.0.1:8080`: a server typed without its scheme."""
    host, sep, rest = text.partition(":")
    return bool(sep) and rest[:1].isdigit() and (host in ("localhost", "0.0.0.0") or host.replace(".", "").isdigit())


def settings_for(settings: Settings, args: list[str], current: LLM | None) -> Settings:
    """A copy of `settings` that selects what `/model ARGS` asks for (the caller's settings stay as they are)."""
    if not args or len(args) > 2:
        raise VchatError(f"usage: {USAGE}")
    new = dataclasses.replace(settings, models=dict(settings.models))
    first = args[0]
    if len(args) == 2 and not _is_url(first):
        if _looks_like_address(first):
            raise VchatError(f"a server address starts with http://, e.g. /model http://{first} {args[1]}")
        raise VchatError(f"usage: {USAGE}")
    if first.lower() in ("none", "off"):
        new.llm = "none"
    elif first == "local" or first.startswith(("local:", "scripted:")):
        new.llm = first
    elif _is_url(first):
        if not first.startswith(("http://", "https://")):
            raise VchatError(f"{first}: a server address starts with http:// or https://")
        problem = url_problem(first)
        if problem:
            raise VchatError(f"{first} {problem}")
        new.llm, new.base_url = "auto", first.rstrip("/")
        new.model = args[1] if len(args) == 2 else None
    elif _looks_like_address(first):
        raise VchatError(f"a server address starts with http://, e.g. /model http://{first}")
    else:
        # A model name: on the server in use now when there is one, else wherever select_llm finds it.
        new.llm, new.model = "auto", first
        if current is not None and current.base_url is not None:
            new.base_url = current.base_url
    return new


def switch(settings: Settings, args: list[str], current: LLM | None) -> tuple[LLM | None, Settings]:
    """Connect what `/model ARGS` names; returns the backend (None for `none`) and the settings that chose it.

    A model named on a local server is checked against the server's list, so a typo is caught now
    rather than at the next message.
    """
    from vchat.llm.select import connect_hint, select_llm

    new = settings_for(settings, args, current)
    llm = select_llm(new)
    if (llm is None and new.llm != "none") or (is_builtin(llm) and not new.llm.startswith("local")):
        # Nothing serves that name: do not fall back to the built-in planner as if it did.
        raise VchatError(f"no server found for {args[0]!r}; {connect_hint()}, or /model URL NAME")
    base_url = llm.base_url if llm is not None else None
    if new.model and llm is not None and base_url is not None and is_local_url(base_url):
        from vchat.llm.openai_backend import display_url

        served = [str(name) for name in llm.list_models()]
        if served and new.model not in served:
            shown = ", ".join(served[:8]) + (", …" if len(served) > 8 else "")
            raise VchatError(f"{display_url(base_url)} has no model {new.model!r}; it serves: {shown}")
    return llm, new
