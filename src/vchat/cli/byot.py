"""`vchat plugins`, and what `vchat tools` and `vchat doctor` say about plugins and external MCP servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from vchat.cli.options import ConfigOpt

if TYPE_CHECKING:
    from pathlib import Path

    from vchat.config import Settings
    from vchat.mcp_config import McpServer
    from vchat.tools.base import Tool

McpOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--mcp",
        metavar="NAME=COMMAND",
        help="Offer an MCP server's tools as NAME__TOOL for this run (a command, or an http(s) URL; repeatable).",
    ),
]


def mcp_flag(text: str) -> McpServer:
    """`--mcp NAME=COMMAND` (the command split like a shell would) or `--mcp NAME=URL`; ConfigError if neither."""
    import shlex

    from vchat.errors import ConfigError
    from vchat.mcp_config import mcp_server

    name, sep, rest = text.partition("=")
    if not sep or not rest.strip():
        raise ConfigError(f"--mcp takes NAME=COMMAND or NAME=URL, not {text!r}")
    table: dict[str, Any] = {"url": rest.strip()} if rest.strip().lower().startswith(("http://", "https://")) else {}
    if not table:
        try:
            table["command"] = shlex.split(rest)
        except ValueError as exc:
            raise ConfigError(f"--mcp {name}: cannot split the command ({exc})") from None
    return mcp_server(name.strip(), table, "--mcp")


def add_flag_servers(settings: Settings, values: list[str] | None) -> None:
    """`--mcp NAME=COMMAND` servers join (or replace, by name) the config file's `[mcp_servers]`."""
    from vchat.errors import ConfigError, UsageError

    for value in values or []:
        try:
            server = mcp_flag(value)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        settings.mcp_servers[server.name] = server


def print_plugins(settings: Settings) -> int:
    """List the installed plugins' tools with their packages, then one line per plugin that failed; 1 if any did."""
    from vchat.cli.extras import plugin_set
    from vchat.ui.render import listing_console, print_warning

    console = listing_console()
    found = plugin_set()
    if not settings.plugins:
        console.print("plugins are off (plugins = false in the config file)", markup=False)
    if not found.plugins and not found.failures:
        console.print("no plugins installed (packages add tools through the `vchat.tools` entry-point group)")
    for plugin in found.plugins:
        version = f" {plugin.version}" if plugin.version else ""
        line = f"{plugin.tool.name:<24} {plugin.package}{version}  {plugin.tool.description}"
        console.print(line, markup=False, highlight=False)
    from rich.console import Console

    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    for failure in found.failures:
        print_warning(errors, failure)
    return 1 if found.failures else 0


def _settings(config: Path | None, mcp: list[str] | None = None) -> Settings:
    """Settings from the config file and `--mcp` flags; a bad one is the usual one-line error."""
    from vchat.cli.common import fail_on, settings_from_flags
    from vchat.errors import VchatError

    try:
        settings = settings_from_flags(config)
        add_flag_servers(settings, mcp)
    except VchatError as exc:
        fail_on(exc)
    return settings


def plugins(config: ConfigOpt = None) -> None:
    """List the tools installed plugins add, with their packages, and any plugin that failed to load."""
    raise typer.Exit(print_plugins(_settings(config)))


def plugin_class(config: Path | None, name: str) -> type[Tool] | None:
    """`vchat tools NAME`: the installed plugin tool of that name, when plugins are on."""
    from vchat.cli.extras import plugin_tool_class

    return plugin_tool_class(_settings(config), name)


def _print_tools(tools: list[type[Tool]], verbose: bool) -> None:
    import sys

    from vchat.ui.tool_list import listing_width, tool_lines

    sys.stdout.write("".join(line + "\n" for line in tool_lines(tools, verbose=verbose, width=listing_width())))


def print_extra_tools(config: Path | None, mcp: list[str] | None, verbose: bool, names: list[str] | None) -> None:
    """The `vchat tools` sections after the built-ins: plugin tools by package, then each MCP server's tools.

    Nothing when tools were named (`vchat tools NAME`): those are listed with the built-ins.
    """
    from vchat.cli.extras import plugin_set
    from vchat.ui.render import listing_console, print_warning

    if names:
        return
    settings = _settings(config, mcp)
    console = listing_console()
    found = plugin_set()
    if settings.plugins and found.plugins:
        packages = sorted({plugin.package for plugin in found.plugins})
        for package in packages:
            console.print(f"\nplugin {package}", style="bold", markup=False)
            _print_tools([p.tool for p in found.plugins if p.package == package], verbose)
    from rich.console import Console

    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    for failure in found.failures if settings.plugins else []:
        print_warning(errors, failure)
    if not settings.mcp_servers:
        return
    from vchat.mcp_client import ExternalServers

    servers = ExternalServers(settings.mcp_servers)
    try:
        for name in settings.mcp_servers:
            status = servers.status(name)
            console.print(f"\nMCP server {name} ({status.target})", style="bold", markup=False)
            if status.failure:
                print_warning(errors, status.failure)
            elif status.tools:
                _print_tools(list(status.tools), verbose)
            else:
                console.print("  (no tools)", markup=False)
    finally:
        servers.close()


def doctor(settings: Settings) -> bool:
    """`vchat doctor`: vchat's own checks (True when the language model answers), then a row for the plugins
    and one per external MCP server (started, its tools listed)."""
    from vchat.cli.models import doctor as own_checks

    answered = own_checks(settings)
    for label, value in server_rows(settings):
        typer.echo(f"{label:<12}  {value}")
    return answered


def server_rows(settings: Settings) -> list[tuple[str, str]]:
    """`vchat doctor` rows: each MCP server started, its tools listed (or why it did not start); plugins loaded."""
    from vchat.cli.extras import plugin_set

    rows: list[tuple[str, str]] = []
    if settings.plugins:
        found = plugin_set()
        names = ", ".join(p.tool.name for p in found.plugins) or "none"
        failed = f"; {len(found.failures)} failed to load (`vchat plugins`)" if found.failures else ""
        rows.append(("plugins", names + failed))
    if not settings.mcp_servers:
        return rows
    import time

    from vchat.mcp_client import ExternalServers

    servers = ExternalServers(settings.mcp_servers)
    try:
        for name in settings.mcp_servers:
            started = time.perf_counter()
            status = servers.status(name)
            took = time.perf_counter() - started
            if status.failure:
                rows.append((f"mcp {name}", f"error: {status.failure}"))
            else:
                tools = ", ".join(t.name for t in status.tools) or "no tools"
                rows.append((f"mcp {name}", f"started in {took:.1f} s: {tools}"))
    finally:
        servers.close()
    return rows
