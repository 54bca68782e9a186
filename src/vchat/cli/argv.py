"""Command-line pre-processing: help placeholders, bare `--resume`, and a pointer for text typed without a command."""

from __future__ import annotations

import re
from typing import Any


def plain_flag_help() -> None:
    """Show no value placeholder after a flag in help: `--json`, not `--json <bool>` (read as `--json true`).

    Recent typer prints a type name for every parameter without a metavar, flags included; an empty
    placeholder is what click prints for flags.
    """
    from typer import core

    for name in ("TyperOption", "TyperArgument"):
        cls = getattr(core, name, None)
        shown = getattr(cls, "display_type_rich", None)
        if cls is None or shown is None or getattr(shown, "_vchat_plain", False):
            continue
        is_argument = name == "TyperArgument"

        def display_type_rich(self: Any, ctx: Any, shown: Any = shown, is_argument: bool = is_argument) -> Any:
            if is_argument and getattr(self, "metavar", None):  # the name column already shows the metavar
                return None
            if getattr(self, "is_flag", False) and getattr(self, "metavar", None) is None:
                return None
            return shown(self, ctx)

        # A mark on our own wrapper function, so that a second call does not wrap it again.
        display_type_rich._vchat_plain = True  # type: ignore[attr-defined]  # noqa: SLF001 our function's own mark
        cls.display_type_rich = display_type_rich


_SESSION_ID = re.compile(r"^\d{8}(-\d{0,6}(-[0-9a-f]{0,4})?)?$")


def resume_value(argv: list[str]) -> list[str]:
    """Give a bare `--resume` the value `latest`, so its session id can be left out.

    click's optional option values would swallow the next option or the prompt; a token
    counts as the session only when it looks like a session id (`20261126-101500-3fa2`).
    """
    out: list[str] = []
    for i, token in enumerate(argv):
        out.append(token)
        if token == "--resume":
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is None or not (_SESSION_ID.match(following) or _is_session_folder(following)):
                out.append("latest")
    return out


def _is_session_folder(token: str) -> bool:
    """A path to a session folder (it holds a transcript): `--resume vchat-out/20261126-101500-3fa2`."""
    import os

    from vchat.store.transcript import TRANSCRIPT_NAME

    return not token.startswith("-") and os.path.isfile(os.path.join(os.path.expanduser(token), TRANSCRIPT_NAME))


def not_a_command(argv: list[str], group: Any) -> str | None:
    """A pointer for a first word that is no command: `vchat "make the sky purple"` means `vchat run "…"`.

    Returns None when the first positional word is a command, or when it looks like a typo of one (click's
    own "did you mean" then answers).
    """
    import difflib
    import shlex

    takes_value = {opt for p in group.params if not getattr(p, "is_flag", False) for opt in p.opts}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            i += 1
            break
        if not token.startswith("-") or token == "-":
            break
        i += 1 if "=" in token or token not in takes_value else 2
    if i >= len(argv):
        return None
    word = argv[i]
    commands = list(group.commands)
    if word in commands or (" " not in word and difflib.get_close_matches(word, commands, n=1, cutoff=0.75)):
        return None
    # Keep the options typed before the text that `vchat run` also takes (-i photo.jpg, --model …).
    run_opts = {opt for p in group.commands["run"].params for opt in p.opts} if "run" in group.commands else set()
    kept: list[str] = []
    j = 0
    while j < i:
        token, name = argv[j], argv[j].partition("=")[0]
        width = 1 if "=" in token or token not in takes_value else 2
        if name in run_opts:
            kept += argv[j : j + width]
        j += width
    rest = " ".join(shlex.quote(a) for a in [*argv[i:], *kept])
    return (
        f"{word!r} is not a command; to ask the model once: vchat run {rest}; "
        f"for the chat, start `vchat` and type it there"
    )


def top_level_resume(argv: list[str], commands: set[str]) -> list[str]:
    """`vchat --resume nosuch`: before any command, the word after --resume can only be a session name."""
    out = list(argv)
    for i, token in enumerate(out[:-1]):
        if token in commands:
            break
        if token == "--resume" and out[i + 1] == "latest" and i + 2 < len(out):
            following = out[i + 2]
            if not following.startswith("-") and following not in commands:
                del out[i + 1]  # the session is the next word: drop the `latest` _resume_value put in
            break
    return out
