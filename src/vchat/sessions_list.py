"""`vchat sessions`: saved sessions with date, first message and image count."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from vchat.config import Settings
from vchat.transcript import TRANSCRIPT_NAME, iter_sessions, read_records


def session_summary(records: list[dict[str, object]]) -> tuple[str, int, int]:
    """First user message, number of images and number of turns in a transcript."""
    first = next((str(r.get("text", "")) for r in records if r.get("type") == "user"), "")
    images = sum(1 for r in records if r.get("type") == "image")
    turns = sum(1 for r in records if r.get("type") == "user")
    return first, images, turns


def print_sessions(settings: Settings, console: Console | None = None) -> None:
    """Print the table of sessions under the output folder, newest first."""
    console = console or Console()
    folders = list(iter_sessions(settings.out_dir))
    if not folders:
        console.print(f"no sessions in {settings.out_dir}")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("session", "last used", "images", "turns", "first message"):
        table.add_column(column, no_wrap=column != "first message")
    for folder in folders:
        path = folder / TRANSCRIPT_NAME
        records, _ = read_records(path)
        first, images, turns = session_summary(records)
        when = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        short = " ".join(first.split())
        table.add_row(folder.name, when, str(images), str(turns), short[:70] + ("…" if len(short) > 70 else ""))
    console.print(table)
