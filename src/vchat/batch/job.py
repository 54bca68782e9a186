"""What a batch does to each image: one tool with fixed inputs, or one request the model plans per image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vchat.chat.binding import bind_named
from vchat.chat.calls import fill_inputs
from vchat.errors import VchatError
from vchat.store.images import ImageRef
from vchat.tools.base import Tool

INPUT_HANDLE = "img1"  # every image starts as img1 of its own little context or session


@dataclass(frozen=True)
class Job:
    """Tool mode (`tool` set: run it with `args`) or agent mode (`prompt` planned by the model)."""

    tool: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    prompt: str | None = None
    max_steps: int = 4  # agent mode: most tool calls per image

    @property
    def mode(self) -> str:
        """`tool` or `agent`."""
        return "tool" if self.tool else "agent"


def named_inputs(tool: Tool, job: Job) -> dict[str, Any]:
    """The tool's named inputs for one image: --arg values, the image as its first image field, the text.

    The first image field takes the batch's image; a per-image context knows no other image,
    so a tool's second image field (if required) cannot be filled and binding says so.
    """
    if not any(f.kind == "image" for f in tool.inputs):
        raise VchatError(f"{tool.name} takes no image; `vchat batch` runs a tool over images")
    return fill_inputs(type(tool), job.args, [INPUT_HANDLE], job.prompt)


def check_job(tool: Tool, job: Job) -> None:
    """Bind the inputs once before starting, so a bad --arg fails at once rather than on every image."""

    def resolve(name: str) -> ImageRef:
        if name.strip().lower() != INPUT_HANDLE:
            raise VchatError(f"{name!r}: in a batch the only image is the input itself")
        return ImageRef(INPUT_HANDLE, Path("input.png"))

    bind_named(type(tool), named_inputs(tool, job), resolve)
