"""Console entry point: `vchat show` takes a short path (no typer, rich or session code); all else goes to the CLI."""

from __future__ import annotations

import sys


def main() -> None:
    """Run vchat with sys.argv."""
    argv = sys.argv[1:]
    if argv[:1] == ["show"]:
        # `vchat show` is used like imgcat, often in loops: importing the whole command line (typer, rich,
        # pydantic) cost more than decoding and encoding the picture.
        from vchat.cli.show import quick_show

        code = quick_show(argv[1:])
        if code is not None:
            sys.exit(code)
    from vchat.cli.app import main as cli_main

    cli_main()
