"""Build a ready Session from settings: model backend, tool set, resume, caption-on-attach."""

from __future__ import annotations

from vchat.config import Settings
from vchat.errors import VchatError
from vchat.resume import resume_session
from vchat.session import Session
from vchat.store.images import ImageRef


def caption_on_attach(session: Session, ref: ImageRef) -> None:
    """Caption an attached image so the model knows what it shows (only when the user enabled it)."""
    from vchat.tools.perception.caption import caption

    try:
        ref.caption = caption(session, session.load_image(ref)) or None
    except VchatError as exc:  # a missing captioner must not stop the attach itself
        ref.note = f"no caption: {exc}"


def remembered_choice(settings: Settings, resume: str) -> dict[str, str | None] | None:
    """The last language model `/model` chose in the session `resume` names ({llm, model, base_url}), if any."""
    from vchat.config import check_url
    from vchat.resume import find_session
    from vchat.store.transcript import TRANSCRIPT_NAME, read_records

    folder = find_session(settings.out_dir, None if resume == "latest" else resume)
    records, _ = read_records(folder / TRANSCRIPT_NAME)
    for record in reversed(records):
        choice = record.get("choice") if record.get("type") in ("model", "session") else None
        if not isinstance(choice, dict):
            if record.get("type") == "model":
                return None  # the last switch was not kept (its address held a password): not an older one either
            continue
        values = {key: choice.get(key) for key in ("llm", "model", "base_url")}
        if not isinstance(values["llm"], str) or not all(v is None or isinstance(v, str) for v in values.values()):
            return None  # a damaged record: the settings as given rather than a guess
        try:
            check_url(values["base_url"], "the resumed session's /model")
        except VchatError:
            return None
        return values
    return None


def build_session(
    settings: Settings, *, llm: str, resume: str | None = None, llm_flags: bool = False
) -> tuple[Session, str | None]:
    """A new or resumed session; `llm` is required, optional or skip (tools only, no probing).

    A resumed session reconnects to the language model its `/model` last chose, unless `llm_flags`
    (--llm, --model or --base-url given on this command line) choose anew.
    Returns the session and a warning when resuming had to skip damaged transcript lines.
    """
    import dataclasses

    from vchat.cli.extras import attach_servers, plugin_tools
    from vchat.llm.select import connect_hint, select_llm
    from vchat.tools.registry import all_tools

    choice = remembered_choice(settings, resume) if resume is not None and not llm_flags and llm != "skip" else None
    if choice is not None:
        settings = dataclasses.replace(settings, models=dict(settings.models))
        settings.llm, settings.model, settings.base_url = str(choice["llm"]), choice["model"], choice["base_url"]
    try:
        model = select_llm(settings) if llm != "skip" else None
    except VchatError as exc:
        if choice is None:
            raise
        raise VchatError(
            f"{exc} (the model this session chose with /model; --llm, --model or --base-url pick another)"
        ) from None
    if llm == "required" and model is None and settings.llm == "none":
        raise VchatError("the language model is off (llm = none); a request needs one, or run a tool with --tool NAME")
    if llm == "required" and model is None:
        raise VchatError(f"no language model found; {connect_hint()}")
    warning = None
    tools = [*all_tools(), *plugin_tools(settings)]
    if resume is not None:
        session, warning = resume_session(settings, tools, model, None if resume == "latest" else resume)
    else:
        session = Session(settings, tools, model)
    attach_servers(session, settings)
    if choice is not None:
        session.model_choice = choice
    if settings.caption_on_attach:
        session.on_attach = caption_on_attach
    return session, warning
