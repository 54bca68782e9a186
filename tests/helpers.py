"""Shared test helpers: small images on disk and sessions wired to a scripted model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from vchat.config import Settings

if TYPE_CHECKING:
    from vchat.session import Session


def photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A small RGB image with shapes, so edge detectors find something."""
    rng = np.random.default_rng(seed)
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[:, :] = (30, 60, 90)
    arr[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = (220, 200, 40)
    arr += rng.integers(0, 8, size=arr.shape, dtype=np.uint8)
    return Image.fromarray(arr, "RGB")


def write_photo(folder: Path, name: str = "photo.png", **kwargs: int) -> Path:
    """Save `photo()` under folder/name and return the path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    photo(**kwargs).save(path)
    return path


def make_session(tmp_path: Path, replies: list[str] | None = None, **settings: object) -> Session:
    """A session writing under tmp_path/out, talking to a ScriptedLLM with these replies."""
    from vchat.llm.scripted import ScriptedLLM
    from vchat.session import Session
    from vchat.tools.registry import all_tools

    config = Settings(out_dir=tmp_path / "out", **settings)  # type: ignore[arg-type]
    llm = ScriptedLLM(replies) if replies is not None else None
    return Session(config, all_tools(), llm)


def act(tool: str, tool_input: str) -> str:
    """A well-formed tool call reply."""
    return f"Thought: Do I need to use a tool? Yes\nAction: {tool}\nAction Input: {tool_input}"


def answer(text: str) -> str:
    """A well-formed final answer reply."""
    return f"Thought: Do I need to use a tool? No\nAI: {text}"
