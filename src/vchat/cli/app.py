"""Command line: the composition root that wires settings, the model, tools, session and UI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from vchat import __version__
from vchat.cli.argv import not_a_command, plain_flag_help, resume_value, top_level_resume
from vchat.cli.byot import McpOpt, add_flag_servers, plugin_class, plugins, print_extra_tools
from vchat.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, fail, fail_on, settings_from_flags, stderr
from vchat.cli.options import BaseUrlOpt, ConfigOpt, ImageOpt, LlmOpt, ModelOpt, OutOpt, PreviewOpt, StepsOpt, TierOpt
from vchat.errors import UsageError, VchatError

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
    tier: TierOpt = None,
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
        settings = settings_from_flags(
            config,
            model=model,
            base_url=base_url,
            llm=llm,
            out_dir=out,
            max_steps=max_steps,
            preview=preview,
            tier=tier,
            verbose=verbose or None,
            debug=debug or None,
        )
        add_flag_servers(settings, mcp)
        from vchat.cli.repl import run_repl

        chosen = any(flag is not None for flag in (model, base_url, llm))
        code = run_repl(settings, images=list(image or []), resume=resume, preview_flag=preview, llm_flags=chosen)
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
    tier: TierOpt = None,
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
    from vchat.cli.tool_call import check_tool_call, one_image_per_field

    try:
        settings = settings_from_flags(
            config,
            model=model,
            base_url=base_url,
            llm=llm,
            out_dir=out,
            max_steps=max_steps,
            tier=tier,
            verbose=verbose or None,
        )
        add_flag_servers(settings, mcp)
        if tool is None and not (prompt or "").strip():
            raise UsageError('empty prompt: say what to do, e.g. vchat run "describe this" -i photo.jpg')
        if tool is not None:
            one_image_per_field(check_tool_call(tool, list(arg or []), settings), image or [])
        from vchat.store.images import open_image

        for path in image or []:  # fail fast on a bad input, before contacting any server
            open_image(path.expanduser(), settings.max_image_pixels)
        from vchat.cli.wiring import build_session

        chosen = any(flag is not None for flag in (model, base_url, llm))
        session, warning = build_session(settings, llm="skip" if tool else "required", resume=resume, llm_flags=chosen)
        code = run_once(
            session,
            prompt,
            images=list(image or []),
            tool=tool,
            args=list(arg or []),
            as_json=as_json,
            warning=warning,
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
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME]...", help="Tools to show with their inputs (old names too)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show each tool's inputs.")] = False,
    mcp: McpOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List the tools the model and MCP clients see (old names in brackets stay callable)."""
    import sys

    from vchat.chat.calls import unknown_tool_message
    from vchat.tools.registry import OFFERED, TOOL_CLASSES, tool_class
    from vchat.ui.tool_list import listing_width, tool_lines

    chosen = list(OFFERED)
    if names:
        found = [tool_class(name) or plugin_class(config, name) for name in names]
        missing = [name for name, cls in zip(names, found, strict=True) if cls is None]
        if missing:
            known = [t.name for t in (*OFFERED, *TOOL_CLASSES)]
            fail_on(UsageError(unknown_tool_message(missing[0], sorted(set(known)))))
        chosen, verbose = [cls for cls in found if cls is not None], True
    sys.stdout.write("".join(line + "\n" for line in tool_lines(chosen, verbose=verbose, width=listing_width())))
    print_extra_tools(config, mcp, verbose, names)  # plugins by package, then each MCP server's tools


@app.command("sessions")
def sessions_cmd(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="DIR", help="Also list sessions under DIR (the index lists every folder)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """List saved sessions, newest first."""
    from vchat.cli.sessions import print_sessions

    try:
        print_sessions(settings_from_flags(config, out_dir=out))
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
    from vchat.resume import resume_session
    from vchat.tools.registry import all_tools
    from vchat.ui.render import images_tree

    try:
        settings = settings_from_flags(config, out_dir=out)
        loaded, warning = resume_session(settings, all_tools(), None, session, mark=False)
        if warning:
            from vchat.ui.render import print_warning

            print_warning(stderr(), warning)
        typer.echo(f"session {loaded.id}")
        typer.echo(images_tree(loaded.store))
    except VchatError as exc:
        fail_on(exc)


@app.command("doctor")
def doctor_cmd(
    model: ModelOpt = None, base_url: BaseUrlOpt = None, llm: LlmOpt = None, config: ConfigOpt = None
) -> None:
    """Check the setup: the language model (exit 1 when it does not answer), device, memory, model cache."""
    from vchat.cli.byot import doctor  # vchat's own checks, then plugins and each MCP server

    try:
        settings = settings_from_flags(config, model=model, base_url=base_url, llm=llm)
    except VchatError as exc:
        fail_on(exc)
    raise typer.Exit(0 if doctor(settings) else 1)


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
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host", metavar="NAME", help="With --http: another Host name clients use (a proxy); repeatable."
        ),
    ] = None,
    out: OutOpt = None,
    tier: TierOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Serve every tool over the Model Context Protocol, for other agents (stdio, or --http)."""
    from vchat.cli.mcp import run_mcp

    try:
        settings = settings_from_flags(config, out_dir=out, tier=tier)
        code = run_mcp(
            settings,
            http=http,
            allow=list(allow or []),
            preview_size=preview_size,
            preview_format=preview_format,
            tools=tools,
            allow_hosts=list(allow_host or []),
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
app.command("plugins")(plugins)


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

            print_error(stderr(), pointer)
            sys.exit(EXIT_USAGE)
        app(args=argv, prog_name="vchat")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
