"""What every command shares: exit codes, the one error reporter, settings from flags, SIGTERM as Ctrl-C."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from vchat.errors import ConfigError, UsageError, VchatError

if TYPE_CHECKING:
    from rich.console import Console

    from vchat.config import Settings

# Exit codes a script can rely on.
EXIT_OK = 0
EXIT_ERROR = 1  # environment or input fault: missing file, server down, bad key
EXIT_USAGE = 2  # bad command line (typer/click's own code)
EXIT_GAVE_UP = 3  # the model did not reach an answer (step limit, unreadable replies)
EXIT_SOME_FAILED = 4  # `vchat batch`: some images failed, the others are done
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM

_FLAG_NAMES = {"out_dir": "--out"}


def stderr() -> Console:
    """The console every command writes its errors and progress to."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print one error line on stderr and exit."""
    from vchat.ui.render import print_error

    print_error(stderr(), message)
    raise typer.Exit(code)


def fail_on(exc: VchatError) -> NoReturn:
    """Exit with the error's one line: code 2 for a bad command line, 1 for everything else."""
    fail(str(exc), EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR)


def settings_from_flags(config: Path | None = None, **flags: Any) -> Settings:
    """Settings from defaults < config file < environment < the flags given (None: not given).

    A bad flag value is a bad command line (UsageError, exit 2) naming the flag as typed;
    the same value from the config file is not.
    """
    from vchat.config import check_flags, load_settings

    given = {k: v for k, v in flags.items() if v is not None}
    try:
        check_flags(given)
    except ConfigError as exc:
        message = str(exc).removeprefix("command line: ")
        flag = next((k for k in given if message.startswith(k)), None)
        if flag is not None:  # name the flag the user typed, not the setting behind it
            message = _FLAG_NAMES.get(flag, "--" + flag.replace("_", "-")) + message[len(flag) :]
        raise UsageError(message) from None
    return load_settings(given, config_path=config)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM (a job scheduler's or batch runner's stop) ends the command as Ctrl-C does: finished work is kept."""
    signal.signal(signal.SIGTERM, _interrupt)
