"""`vchat mcp`: options, the session folder and the allowed roots; then serve over stdio or HTTP."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vchat.config import Settings
from vchat.errors import UsageError
from vchat.mcp_server.preview import PREVIEW_FORMATS

if TYPE_CHECKING:
    from vchat.tools.base import Tool


def default_roots(cwd: Path) -> tuple[list[Path], str | None]:
    """The current folder, unless it is / or the home folder (desktop clients start servers there)."""
    home = Path.home().resolve()
    cwd = cwd.resolve()
    if cwd == Path(cwd.anchor) or cwd == home or home.is_relative_to(cwd):
        return [], f"not allowing the current folder {cwd} by default (too broad); pass --allow DIR"
    return [cwd], None


def allowed_roots(allow: list[Path], cwd: Path) -> tuple[list[Path], str | None]:
    """--allow folders (each must exist), or the default."""
    if not allow:
        return default_roots(cwd)
    roots: list[Path] = []
    for folder in allow:
        path = folder.expanduser()
        if not path.is_dir():
            raise UsageError(f"--allow {folder}: no such folder")
        roots.append(path.resolve())
    return roots, None


def writable_out_dir(settings: Settings) -> str | None:
    """Move the default output folder to the user data folder when the current folder is no place for it."""
    if settings.out_dir != Settings().out_dir:  # set by the user (flag, environment or config file)
        return None
    here = Path.cwd()
    if os.access(here, os.W_OK) and here != Path(here.anchor):
        return None
    from platformdirs import user_data_path

    settings.out_dir = user_data_path("vchat") / "vchat-out"
    return f"the current folder {here} is not a place for outputs; writing to {settings.out_dir}"


def select_tools(spec: str | None, tools: list[Tool]) -> tuple[list[Tool], list[Tool] | None]:
    """`--tools canny_edges,transform`: (the callable tools, the listed ones); (all, None) without the option.

    A family brings its members along as callable aliases (as without --tools); a member chosen alone is
    listed under its own name, without the family. Unknown names are a usage error with a did-you-mean.
    """
    if spec is None:
        return tools, None
    from vchat.chat.calls import unknown_tool_message

    names = list(dict.fromkeys(part.strip() for part in spec.split(",") if part.strip()))
    if not names:
        raise UsageError("--tools: name the tools or families to serve, e.g. --tools canny_edges,transform")
    by_name = {tool.name: tool for tool in tools}
    for name in names:
        if name not in by_name:
            raise UsageError(f"--tools: {unknown_tool_message(name, sorted(by_name))}")
    chosen = set(names)
    for name in names:
        chosen.update(member.name for member in getattr(by_name[name], "members", {}).values())
    return [tool for tool in tools if tool.name in chosen], [tool for tool in tools if tool.name in names]


def run_mcp(
    settings: Settings,
    *,
    http: str | None,
    allow: list[Path],
    preview_size: int,
    preview_format: str,
    tools: str | None = None,
    allow_hosts: list[str] | None = None,
) -> int:
    """Build the session and the server, say where things are (stderr), and serve."""
    from vchat.cli.common import stop_on_sigterm
    from vchat.mcp_server.rebinding import is_loopback
    from vchat.mcp_server.server import ServerOptions, VchatServer
    from vchat.mcp_server.transport import check_listen, parse_listen, serve
    from vchat.tools.registry import all_tools

    if preview_format not in PREVIEW_FORMATS:
        raise UsageError(f"--preview-format {preview_format!r}: choose one of {', '.join(PREVIEW_FORMATS)}")
    if preview_size < 0:
        raise UsageError("--preview-size must be 0 (no previews) or a size in pixels")
    served, listed = select_tools(tools, all_tools())
    listen = parse_listen(http) if http is not None else None
    if listen is not None:
        check_listen(*listen)
    roots, note = allowed_roots(allow, Path.cwd())
    notes = [n for n in (note, writable_out_dir(settings)) if n]
    options = ServerOptions(allow=roots, preview_size=preview_size, preview_format=preview_format)
    app = VchatServer(settings, served, options, listed=listed, over_http=listen is not None)
    where = "stdio" if listen is None else f"http://{listen[0]}:{listen[1]}/mcp"
    if listen is not None and ":" in listen[0]:
        where = f"http://[{listen[0]}]:{listen[1]}/mcp"
    # SIGTERM (a client or service manager stopping the server) ends it like Ctrl-C: sessions closed, locks let go.
    # Set before the ready line below, which is what a supervisor waits for.
    previous = signal.getsignal(signal.SIGTERM)
    stop_on_sigterm()
    try:
        for line in notes:
            sys.stderr.write(f"vchat mcp: {line}\n")
        if listen is not None and not is_loopback(listen[0]):
            sys.stderr.write(
                f"vchat mcp: warning: listening on {listen[0]}, not loopback: anyone who can reach it can run "
                "the tools and read images under the allowed folders\n"
            )
        allowed = ", ".join(str(p) for p in roots) or "none"
        sys.stderr.write(
            f"vchat mcp {len(app.listed)} tools on {where}; images read from: {allowed}; "
            f"outputs in {settings.out_dir.resolve()}, a session folder per client\n"
        )
        sys.stderr.flush()
        serve(app, listen, allow_hosts or [])
    except KeyboardInterrupt:
        interrupted = True
    else:
        interrupted = False
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        app.close()
    if interrupted and listen is None:
        # Everything is closed and written (records go out unbuffered); what is left is the stdio transport's
        # reader thread, blocked on a stdin the client still holds open, which would keep the process alive.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
