"""Command-line options shared by several commands (one wording, one metavar, everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# Placeholders say what to type (PATH, N, KEY=VALUE), never a Python type.
ImageOpt = Annotated[
    list[Path] | None, typer.Option("--image", "-i", metavar="PATH", help="Attach an image (repeatable).")
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", metavar="NAME", help="Model name on the server.")]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", metavar="URL", help="OpenAI-compatible server, e.g. http://localhost:11434/v1."),
]
LlmOpt = Annotated[
    str | None,
    typer.Option(
        "--llm",
        metavar="BACKEND",
        help="Backend: auto, openai, local[:ID_OR_FOLDER] (built-in planner), none, or scripted:FILE.",
    ),
]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", metavar="DIR", help="Output folder (default ./vchat-out).")]
StepsOpt = Annotated[
    int | None, typer.Option("--max-steps", metavar="N", help="Most tool calls per message (default 8).")
]
PreviewOpt = Annotated[
    str | None,
    typer.Option("--preview", metavar="MODE", help="Inline previews: auto, kitty, iterm, sixel, blocks, none."),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", metavar="PATH", help="Config file (default: user config dir).")
]
TierOpt = Annotated[
    str | None,
    typer.Option(
        "--tier", metavar="TIER", help="Model tier: auto (by device memory), classic (SD 1.5 family) or current."
    ),
]
