"""One image a session knows (`ImageRef`: handle, file, lineage) and the lineage record its PNG carries."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from vchat.store.files import PNG_META_KEY

HANDLE_RE = re.compile(r"^img(\d+)$", re.IGNORECASE)


@dataclass
class ImageRef:
    """One image the session knows: its handle, file, parents and how it was made."""

    handle: str
    path: Path
    parents: tuple[str, ...] = ()
    tool: str | None = None  # None: attached by the user
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    source: str | None = None  # the user's original path, for attached images
    width: int = 0
    height: int = 0
    mode: str = ""
    note: str | None = None  # e.g. "first frame of an animated GIF"
    caption: str | None = None  # set on attach when caption_on_attach is on

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (used by --json, transcripts and the PNG chunk)."""
        return {
            "handle": self.handle,
            "path": str(self.path),
            "parents": list(self.parents),
            "tool": self.tool,
            "params": self.params,
            "seed": self.seed,
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "note": self.note,
            "caption": self.caption,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageRef:
        """Inverse of to_dict."""
        return cls(
            handle=str(data["handle"]),
            path=Path(data["path"]),
            parents=tuple(data.get("parents") or ()),
            tool=data.get("tool"),
            params=dict(data.get("params") or {}),
            seed=data.get("seed"),
            source=data.get("source"),
            width=int(data.get("width") or 0),
            height=int(data.get("height") or 0),
            mode=str(data.get("mode") or ""),
            note=data.get("note"),
            caption=data.get("caption"),
        )

    def describe(self) -> str:
        """Short one-line description for observations and listings."""
        origin = f"from {self.tool}" if self.tool else "attached"
        if self.parents:
            origin += f" of {', '.join(self.parents)}"
        seen = f', looks like "{self.caption}"' if self.caption else ""
        return f"{self.handle} ({self.width}x{self.height}, {origin}, {self.path.name}{seen})"


def read_png_record(path: Path) -> dict[str, Any] | None:
    """The lineage record vchat wrote into a PNG's text chunk, if any."""
    try:
        with Image.open(path) as img:
            raw = img.info.get(PNG_META_KEY)
    except (OSError, Image.UnidentifiedImageError):
        return None
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
