"""Command line: the composition root that wires settings, the model, tools, session and UI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from vchat import __version__
from vchat.cli.argv import not_a_command, plain_flag_help, resume_value, top_level_resume
from vchat.cli.byot import McpOpt
from vchat.cli.options import BaseUrlOpt, ConfigOpt, ImageOpt, LlmOpt, ModelOpt, OutOpt, PreviewOpt, StepsOpt
from vchat.errors import ConfigError, UsageError, VchatError

if TYPE_CHECKING:
    from rich.console import Console

    from vchat.config import Settings
    from vchat.session import Session

# Exit codes a script can rely on.
EXIT_OK = 0
EXIT_ERROR = 1  # environment or input fault: missing file, server down, bad key
EXIT_USAGE = 2  # bad command line (typer/click's own code)
EXIT_GAVE_UP = 3  # the model did not reach an answer (step limit, unreadable replies)

app = typer.Typer(
    name="vchat",
    help="Chat with a language model that sees, makes and edits images with visual tools.",
    no_args_is_help=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

# Placeholders say what to type (PATH, N, KEY=VALUE), never a Python type; flags show none (plain_flag_help).
plain_flag_help()


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print one error line on stderr and exit."""
    from vchat.ui.render import print_error

    print_error(_stderr(), message)
    raise typer.Exit(code)


def fail_on(exc: VchatError) -> NoReturn:
    """Exit with the error's one line: code 2 for a bad command line, 1 for everything else."""
    fail(str(exc), EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR)


_FLAG_NAMES = {"out_dir": "--out"}


def _settings(config: Path | None = None, **flags: Any) -> Settings:
    from vchat.config import check_flags, load_settings

    given = {k: v for k, v in flags.items() if v is not None}
    try:  # a bad flag value is a bad command line (exit 2); the same value from the config file is not
        check_flags(given)
    except ConfigError as exc:
        message = str(exc).removeprefix("command line: ")
        flag = next((k for k in given if message.startswith(k)), None)
        if flag is not None:  # name the flag the user typed, not the setting behind it
            message = _FLAG_NAMES.get(flag, "--" + flag.replace("_", "-")) + message[len(flag) :]
        raise UsageError(message) from None
    return load_settings(given, config_path=config)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vchat {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    image: ImageOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    llm: LlmOpt = None,
    out: OutOpt = None,
    max_steps: StepsOpt = None,
    preview: PreviewOpt = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", metavar="[SESSION]", help="Resume a session by id or prefix (default: latest)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the model's thoughts.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    config: ConfigOpt = None,
    mcp: McpOpt = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Start the interactive chat when no command is given."""
    if ctx.invoked_subcommand is not None:
        _hand_down(ctx, ctx.invoked_subcommand)
        return
    try:
        settings = _settings(
            config,
            model=model,
            base_url=base_url,
            llm=llm,
            out_dir=out,
            max_steps=max_steps,
            preview=preview,
            verbose=verbose or None,
            debug=debug or None,
        )
        from vchat.cli.byot import add_flag_servers

        add_flag_servers(settings, mcp)
        from vchat.cli.repl import run_repl

        code = run_repl(settings, images=list(image or []), resume=resume, preview_flag=preview)
    except VchatError as exc:
        fail_on(exc)
    raise typer.Exit(code)


def _hand_down(ctx: typer.Context, name: str) -> None:
    """Options typed before a command (`vchat --out X run …`) apply to it when it has the same option.

    They become the command's defaults (click's default_map), so the same option after the command
    wins; one it does not take is a bad command line that says where the option goes.
    """
    group: Any = ctx.command  # typer's own click Group (typer vendors click)
    command = group.get_command(ctx, name)
    if command is None:
        return
    defaults: dict[str, Any] = {}
    for param in group.params:
        source = ctx.get_parameter_source(param.name) if param.name else None
        if source is None or source.name != "COMMANDLINE":
            continue
        option = max(param.opts, key=len)  # --out, not -o
        same = next((p for p in command.params if option in p.opts), None)
        if same is None or same.name is None:
            takers = [f"vchat {n}" for n, c in group.commands.items() if any(option in p.opts for p in c.params)]
            after = f", or after the command in: {', '.join(takers)}" if takers else ""
            fail(f"`vchat {name}` takes no {option}; it goes before any command (the chat){after}", EXIT_USAGE)
        defaults[same.name] = ctx.params[param.name]
    ctx.default_map = {name: defaults}


def check_tool_call(tool_name: str, pairs: list[str], settings: Settings | None = None) -> None:
    """Reject an unknown tool, a malformed --arg or one naming no input, before anything is made (exit 2).

    Shared by `vchat run --tool` and `vchat batch --tool`; the values themselves are checked by each.
    With settings, plugin tools count too, and an external server's `NAME__TOOL` is checked once it runs.
    """
    from vchat.chat.binding import check_arg_keys, parse_arg_pairs
    from vchat.tools.registry import all_tools, tool_class, unknown_tool_message

    tool = tool_class(tool_name)
    if tool is None and settings is not None:
        from vchat.cli.extras import is_external, plugin_tool_class

        if is_external(settings, tool_name):
            parse_arg_pairs(pairs)  # well-formed KEY=VALUE now; the keys once the server lists its tools
            return
        tool = plugin_tool_class(settings, tool_name)
    if tool is None:
        raise UsageError(unknown_tool_message(tool_name, [tool.name for tool in all_tools()]))
    check_arg_keys(tool, list(parse_arg_pairs(pairs)))


def _tool_inputs(
    session: Session, tool_name: str, prompt: str | None, pairs: list[str], attached: list[Any]
) -> dict[str, Any]:
    """Named inputs for `run --tool`: --arg values, attached images for image fields, the prompt for text."""
    if tool_name not in session.tools:
        session.load_deferred_tools()
    tool = session.tools.get(tool_name)
    if tool is None:
        from vchat.cli.extras import is_external
        from vchat.tools.registry import unknown_tool_message

        if is_external(session.settings, tool_name):  # its server is configured: not a typo but a server fault
            server = tool_name.partition("__")[0]
            raise VchatError(f"{tool_name} is not available: MCP server {server} does not offer it (see above)")
        raise UsageError(unknown_tool_message(tool_name, sorted(session.tools)))
    from vchat.chat.binding import parse_arg_pairs

    named: dict[str, Any] = dict(parse_arg_pairs(pairs))
    images = [ref.handle for ref in attached]
    for spec in tool.inputs:
        if spec.name in named:
            continue
        if spec.kind == "image" and images:
            named[spec.name] = images.pop(0)
        elif spec.kind == "text" and spec.required and prompt:
            named[spec.name] = prompt
            prompt = None
    if prompt:
        raise UsageError(f"{tool_name} has no text input for {prompt!r}; use --arg KEY=VALUE")
    return named


def _one_image_per_field(tool_name: str, images: list[Path]) -> None:
    """`run --tool X -i a -i b`: more images than X takes would be dropped silently; say so instead."""
    from vchat.tools.registry import tool_class

    tool = tool_class(tool_name)
    takes = sum(1 for f in tool.inputs if f.kind == "image") if tool is not None else len(images)
    if takes and len(images) > takes:  # (a tool that takes none just leaves the images attached, as before)
        shown = " ".join(str(p) for p in images)
        raise UsageError(
            f"{tool_name} takes {takes} image{'s' if takes != 1 else ''} but {len(images)} were given; "
            f"to run it on each: vchat batch --tool {tool_name} {shown} --out DIR"
        )


@app.command()
def run(
    prompt: Annotated[
        str | None, typer.Argument(metavar="PROMPT", help="What to do; with --tool, the tool's text input.")
    ] = None,
    image: ImageOpt = None,
    out: OutOpt = None,
    tool: Annotated[
        str | None, typer.Option("--tool", "-t", metavar="NAME", help="Run one tool directly, no language model.")
    ] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", "-a", metavar="KEY=VALUE", help="Tool input (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    llm: LlmOpt = None,
    max_steps: StepsOpt = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", metavar="[SESSION]", help="Continue a session by id or prefix (default: latest)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the model's thoughts.")] = False,
    config: ConfigOpt = None,
    mcp: McpOpt = None,
) -> None:
    """Do one thing and exit: ask the model, or run one tool with --tool (for scripts)."""
    from vchat.cli.run_once import run_once

    try:
        settings = _settings(
            config,
            model=model,
            base_url=base_url,
            llm=llm,
            out_dir=out,
            max_steps=max_steps,
            verbose=verbose or None,
        )
        from vchat.cli.byot import add_flag_servers

        add_flag_servers(settings, mcp)
        if tool is None and not (prompt or "").strip():
            raise UsageError('empty prompt: say what to do, e.g. vchat run "describe this" -i photo.jpg')
        if tool is not None:
            check_tool_call(tool, list(arg or []), settings)
            _one_image_per_field(tool, image or [])
        from vchat.store.images import open_image

        for path in image or []:  # fail fast on a bad input, before contacting any server
            open_image(path.expanduser(), settings.max_image_pixels)
        from vchat.cli.wiring import build_session

        session, warning = build_session(settings, llm="skip" if tool else "required", resume=resume)
        code = run_once(
            session,
            prompt,
            images=list(image or []),
            tool=tool,
            args=list(arg or []),
            as_json=as_json,
            warning=warning,
            tool_inputs=_tool_inputs,
        )
    except VchatError as exc:
        if as_json:
            from vchat.ui.safe import safe_json

            # Same keys as a finished run; `session` is null when it failed before a session existed.
            early: dict[str, object] = {"final": None, "error": str(exc), "session": None, "images": [], "steps": []}
            sys.stdout.write(safe_json(early) + "\n")
        fail_on(exc)
    raise typer.Exit(code)


@app.command("tools")
def tools_cmd(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show each tool's inputs.")] = False,
    mcp: McpOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List the tools the model can use."""
    from vchat.tools.registry import TOOL_CLASSES, family_of
    from vchat.ui.render import listing_console, tools_table

    notes = {}
    for cls in TOOL_CLASSES:
        found = family_of(cls.name)
        if found is not None:  # the model is offered the family; the old name works everywhere too
            notes[cls.name] = f"(the model calls it as {found[0].name} {found[0].selector}={found[1]})"
    listing_console().print(tools_table(TOOL_CLASSES, verbose=verbose, notes=notes))
    from vchat.cli.byot import add_flag_servers, print_extra_tools

    try:  # plugins by package, then each external MCP server's tools (started to list them)
        settings = _settings(config)
        add_flag_servers(settings, mcp)
    except VchatError as exc:
        fail_on(exc)
    print_extra_tools(settings, verbose)


@app.command("sessions")
def sessions_cmd(out: OutOpt = None, config: ConfigOpt = None) -> None:
    """List saved sessions, newest first."""
    from vchat.cli.sessions import print_sessions

    try:
        print_sessions(_settings(config, out_dir=out))
    except VchatError as exc:
        fail_on(exc)


@app.command("images")
def images_cmd(
    session: Annotated[
        str | None, typer.Argument(metavar="SESSION", help="Session id or prefix (default: latest).")
    ] = None,
    out: OutOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Print a session's images as a lineage tree."""
    from vchat.session import Session
    from vchat.tools.registry import all_tools
    from vchat.ui.render import images_tree

    try:
        settings = _settings(config, out_dir=out)
        loaded, warning = Session.resume(settings, all_tools(), None, session, mark=False)
        if warning:
            from vchat.ui.render import print_warning

            print_warning(_stderr(), warning)
        typer.echo(f"session {loaded.id}")
        typer.echo(images_tree(loaded.store))
    except VchatError as exc:
        fail_on(exc)


@app.command("doctor")
def doctor_cmd(config: ConfigOpt = None) -> None:
    """Check the setup: device, memory, model cache, offline state, what would download."""
    from vchat.cli.models import doctor

    try:
        settings = _settings(config)
    except VchatError as exc:
        fail_on(exc)
    doctor(settings)
    from vchat.cli.byot import server_rows

    for label, value in server_rows(settings):  # plugins loaded; each MCP server started and its tools listed
        typer.echo(f"{label:<12}  {value}")


@app.command("show")
def show_cmd(
    images: Annotated[list[Path], typer.Argument(metavar="IMAGE", help="Image files to show.")],
    preview: PreviewOpt = None,
) -> None:
    """Print images inline in the terminal (like imgcat), each with its path under it."""
    from vchat.cli.show import show
    from vchat.config import PREVIEW_MODES

    try:
        if preview is not None and preview not in PREVIEW_MODES:
            raise UsageError(f"--preview must be one of {', '.join(PREVIEW_MODES)}, not {preview!r}")
        code = show(images, None if preview in (None, "auto") else preview)
    except VchatError as exc:
        fail_on(exc)
    raise typer.Exit(code)


@app.command("mcp")
def mcp_cmd(
    http: Annotated[
        str | None,
        typer.Option("--http", metavar="[HOST:]PORT", help="Serve streamable HTTP on loopback by default."),
    ] = None,
    allow: Annotated[
        list[Path] | None,
        typer.Option("--allow", metavar="DIR", help="A folder images may be read from (repeatable; default: here)."),
    ] = None,
    preview_size: Annotated[
        int, typer.Option("--preview-size", metavar="PX", help="Long side of image previews; 0: links only.")
    ] = 512,
    preview_format: Annotated[
        str,
        typer.Option(
            "--preview-format", metavar="FORMAT", help="Previews as auto (PNG for maps, JPEG for photos), png or jpeg."
        ),
    ] = "auto",
    tools: Annotated[
        str | None,
        typer.Option(
            "--tools", metavar="NAMES", help="Serve only these tools or families, e.g. canny_edges,transform."
        ),
    ] = None,
    out: OutOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Serve every tool over the Model Context Protocol, for other agents (stdio, or --http)."""
    from vchat.cli.mcp import run_mcp

    try:
        settings = _settings(config, out_dir=out)
        code = run_mcp(
            settings,
            http=http,
            allow=list(allow or []),
            preview_size=preview_size,
            preview_format=preview_format,
            tools=tools,
        )
    except VchatError as exc:
        fail_on(exc)
    raise typer.Exit(code)


def _add_models_app() -> None:
    from vchat.cli.models import models_app

    app.add_typer(models_app, name="models")


_add_models_app()


def _add_bench_command() -> None:
    from vchat.cli.bench import bench

    app.command("bench")(bench)


_add_bench_command()


def _add_batch() -> None:
    from vchat.cli.batch import batch

    app.command("batch")(batch)


_add_batch()


def _add_plugins() -> None:
    from vchat.cli.byot import plugins

    app.command("plugins")(plugins)


_add_plugins()


def main() -> None:
    """Console-script entry point."""
    try:
        raw = sys.argv[1:]
        group = typer.main.get_command(app)
        commands = set(getattr(group, "commands", {}))
        if raw[:1] == ["batch"]:  # its --resume is a plain flag; its --ray takes an optional address
            from vchat.cli.batch import batch_argv

            argv = batch_argv(raw)
        else:
            argv = top_level_resume(resume_value(raw), commands)
        pointer = not_a_command(argv, group)
        if pointer is not None:
            from vchat.ui.render import print_error

            print_error(_stderr(), pointer)
            sys.exit(EXIT_USAGE)
        app(args=argv, prog_name="vchat")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
