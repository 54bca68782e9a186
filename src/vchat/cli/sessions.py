"""`vchat sessions`: saved sessions with date, first message and image count."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from vchat.config import Settings
from vchat.errors import VchatError
from vchat.store.transcript import TRANSCRIPT_NAME, read_records
from vchat.ui.render import listing_console
from vchat.ui.safe import safe_line


def session_summary(records: list[dict[str, object]]) -> tuple[str, int, int]:
    """First user message, number of images and number of turns in a transcript."""
    first = next((str(r.get("text", "")) for r in records if r.get("type") == "user"), "")
    if not first:
        # A session of direct tool calls (`vchat run --tool`, `/tool`, an MCP client) has no message: its first call.
        call = next((r for r in records if r.get("type") == "tool"), None)
        if call is not None:
            first = f"(tool) {call.get('tool', '?')} {call.get('input') or ''}".rstrip()
    images = sum(1 for r in records if r.get("type") == "image")
    turns = sum(1 for r in records if r.get("type") == "user")
    return first, images, turns


def print_sessions(settings: Settings, console: Console | None = None) -> None:
    """Print the table of sessions under the output folder, newest first."""
    from vchat.store.index import all_sessions

    console = console or listing_console()
    folders = all_sessions(settings.out_dir)
    if not folders:
        where = safe_line(settings.out_dir)
        console.print(Text(f"no sessions yet (none in {where} or the sessions index); start one with `vchat`"))
        return
    # Sessions from several output folders: say where each one is (resuming works from anywhere).
    places = {folder.resolve().parent for folder in folders}
    here = settings.out_dir.resolve()
    table = Table(box=None, header_style="bold", pad_edge=False)
    columns = ["session", "last used", "images", "turns", "first message"]
    if places != {here}:
        columns.insert(4, "folder")
    for column in columns:
        table.add_column(column, no_wrap=column not in ("first message", "folder"))
    for folder in folders:
        path = folder / TRANSCRIPT_NAME
        try:
            records, _ = read_records(path)
        except VchatError as exc:  # one damaged session (a symlink in place of its transcript) is one row
            table.add_row(Text(safe_line(folder.name)), "?", "?", "?", Text(safe_line(f"(unreadable: {exc})", 71)))
            continue
        first, images, turns = session_summary(records)
        when = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        # The user's own words (and folder names from disk): plain text, never markup, never raw escapes.
        first_words = Text(safe_line(first, 71))
        row: list[Text | str] = [Text(safe_line(folder.name)), when, str(images), str(turns), first_words]
        if len(columns) > 5:
            row.insert(4, Text(safe_line(_where(folder.resolve().parent))))
        table.add_row(*row)
    console.print(table)


def _where(folder: Path) -> str:
    """A folder as the user would type it: `~/…` under the home folder."""
    home = Path.home()
    return f"~/{folder.relative_to(home)}" if folder.is_relative_to(home) else str(folder)
