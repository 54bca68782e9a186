"""One tool call from the command line (`run --tool`, `batch --tool`): looked up, checked and bound up front."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vchat.errors import ToolInputError, UnknownImageError, UsageError

if TYPE_CHECKING:
    from vchat.config import Settings
    from vchat.session import Session
    from vchat.tools.base import Tool


def check_tool_call(tool_name: str, pairs: list[str], settings: Settings | None = None) -> type[Tool] | None:
    """The tool a command line names; reject an unknown one, a malformed --arg or one naming no input (exit 2).

    Shared by `vchat run --tool` and `vchat batch --tool`; the values themselves are checked by each.
    With settings, plugin tools count too, and an external server's `NAME__TOOL` is None: it is checked
    once its server runs.
    """
    from vchat.chat.binding import check_arg_keys, parse_arg_pairs
    from vchat.chat.calls import find_tool
    from vchat.tools.registry import all_tools

    tools = {tool.name: tool for tool in all_tools()}
    if settings is not None and tool_name not in tools:
        from vchat.cli.extras import is_external, plugin_tools

        if is_external(settings, tool_name):
            parse_arg_pairs(pairs)  # well-formed KEY=VALUE now; the keys once the server lists its tools
            return None
        tools.update((tool.name, tool) for tool in plugin_tools(settings))
    tool = type(find_tool(tools, tool_name))
    check_arg_keys(tool, list(parse_arg_pairs(pairs)))
    return tool


def tool_inputs(tool: type[Tool], prompt: str | None, pairs: list[str], attached: list[Any]) -> dict[str, Any]:
    """Named inputs for `run --tool`: --arg values, attached images for image fields, the prompt for text."""
    from vchat.chat.binding import parse_arg_pairs
    from vchat.chat.calls import fill_inputs

    given = parse_arg_pairs(pairs)
    images = [ref.handle for ref in attached]
    try:
        return fill_inputs(tool, given, images, prompt)
    except ToolInputError as exc:  # the person typed it: a bad command line
        if not prompt:
            raise UsageError(str(exc)) from None
        refused = exc
    # Words after a tool with no text input fill its other inputs in order, as `/tool flip_image img1 vertical`.
    import shlex

    from vchat.chat.tool_args import parse_tool_args

    named = fill_inputs(tool, given, images)
    words = " ".join(f"{key}={shlex.quote(str(value))}" for key, value in named.items())
    try:
        return {**parse_tool_args(tool, f"{words} {prompt}"), **named}
    except ToolInputError as exc:
        raise UsageError(f"{refused} ({exc})") from None


def one_image_per_field(tool: type[Tool] | None, images: list[Path]) -> None:
    """`run --tool X -i a -i b`: more images than X takes would be dropped silently; say so instead.

    None (an external server's tool, known once its server runs) is not checked here.
    """
    if tool is None:
        return
    tool_name = tool.name
    takes = sum(1 for f in tool.inputs if f.kind == "image")
    takes += sum(int(f.maximum or 0) for f in tool.inputs if f.kind == "images")
    if takes and len(images) > takes:  # (a tool that takes none just leaves the images attached, as before)
        shown = " ".join(str(p) for p in images)
        raise UsageError(
            f"{tool_name} takes {takes} image{'s' if takes != 1 else ''} but {len(images)} were given; "
            f"to run it on each: vchat batch --tool {tool_name} {shown} --out DIR"
        )


@dataclass(frozen=True)
class _Placeholder:
    """Stands for an input image while a call is checked, before any image is copied into a session."""

    handle: str


def placeholders(count: int) -> list[Any]:
    """Stand-ins for `count` input images while a call is checked."""
    return [_Placeholder(f"<input {n}>") for n in range(1, count + 1)]


def check_tool_inputs(session: Session, cls: type[Tool], named: dict[str, Any]) -> None:
    """Raise UsageError (exit 2: the command line is wrong) for a call that cannot run, saying how to fix it."""
    from vchat.chat.binding import bind_named, field_for_key

    tool = cls.name
    given = {spec.name for spec in (field_for_key(cls, key) for key in named) if spec is not None}
    for spec in cls.inputs:
        if spec.required and spec.name not in given:
            how = {"image": "-i PATH", "text": f'the text, e.g. vchat run --tool {tool} "…"'}
            raise UsageError(f"{tool} needs {spec.name}: give {how.get(spec.kind, f'--arg {spec.name}=VALUE')}")

    def resolve(name: str) -> Any:
        # The images given with -i are checked already (open_image); a handle named in --arg must exist.
        if name.startswith("<input "):
            return name
        try:
            return session.store.resolve(name)
        except UnknownImageError:
            known = ", ".join(ref.handle for ref in session.store)
            where = f"this session has {known}" if known else "give files with -i PATH"
            raise UsageError(f"--arg: there is no image {name!r}; {where}") from None

    try:
        bind_named(cls, named, resolve)
    except ToolInputError as exc:  # the model hears these as observations; here the user typed them
        raise UsageError(str(exc)) from None
