"""`vchat plugins`, and what `vchat tools` and `vchat doctor` say about plugins and external MCP servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from vchat.cli.options import ConfigOpt

if TYPE_CHECKING:
    from vchat.config import Settings

McpOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--mcp",
        metavar="NAME=COMMAND",
        help="Offer an MCP server's tools as NAME__TOOL for this run (a command, or an http(s) URL; repeatable).",
    ),
]


def add_flag_servers(settings: Settings, values: list[str] | None) -> None:
    """`--mcp NAME=COMMAND` servers join (or replace, by name) the config file's `[mcp_servers]`."""
    from vchat.config import mcp_flag
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


def plugins(config: ConfigOpt = None) -> None:
    """List the tools installed plugins add, with their packages, and any plugin that failed to load."""
    from vchat.cli.app import _settings, fail_on
    from vchat.errors import VchatError

    try:
        settings = _settings(config)
    except VchatError as exc:
        fail_on(exc)
    raise typer.Exit(print_plugins(settings))


def print_extra_tools(settings: Settings, verbose: bool) -> None:
    """The `vchat tools` sections after the built-ins: plugin tools by package, then each MCP server's tools."""
    from vchat.cli.extras import plugin_set
    from vchat.ui.render import listing_console, print_warning, tools_table

    console = listing_console()
    found = plugin_set()
    if settings.plugins and found.plugins:
        packages = sorted({plugin.package for plugin in found.plugins})
        for package in packages:
            console.print(f"\nplugin {package}", style="bold", markup=False)
            tools = [p.tool for p in found.plugins if p.package == package]
            console.print(tools_table(tools, verbose=verbose))
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
                console.print(tools_table(status.tools, verbose=verbose))
            else:
                console.print("  (no tools)", markup=False)
    finally:
        servers.close()


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
