"""Build a ready Session from settings: model backend, tool set, resume, caption-on-attach."""

from __future__ import annotations

from vchat.config import Settings
from vchat.errors import VchatError
from vchat.session import Session
from vchat.store.images import ImageRef


def caption_on_attach(session: Session, ref: ImageRef) -> None:
    """Caption an attached image so the model knows what it shows (only when the user enabled it)."""
    from vchat.tools.perception.caption import caption

    try:
        ref.caption = caption(session, session.load_image(ref)) or None
    except VchatError as exc:  # a missing captioner must not stop the attach itself
        ref.note = f"no caption: {exc}"


def build_session(settings: Settings, *, llm: str, resume: str | None = None) -> tuple[Session, str | None]:
    """A new or resumed session; `llm` is required, optional or skip (tools only, no probing).

    Returns the session and a warning when resuming had to skip damaged transcript lines.
    """
    from vchat.cli.extras import attach_servers, plugin_tools
    from vchat.llm.select import connect_hint, select_llm
    from vchat.tools.registry import all_tools

    model = select_llm(settings) if llm != "skip" else None
    if llm == "required" and model is None:
        raise VchatError(f"no language model found; {connect_hint()}")
    warning = None
    tools = [*all_tools(), *plugin_tools(settings)]
    if resume is not None:
        session, warning = Session.resume(settings, tools, model, None if resume == "latest" else resume)
    else:
        session = Session(settings, tools, model)
    attach_servers(session, settings)
    if settings.caption_on_attach:
        session.on_attach = caption_on_attach
    return session, warning
