"""What a batch does to each image: one tool with fixed inputs, or one request the model plans per image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vchat.chat.binding import bind_named
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
    named: dict[str, Any] = dict(job.args)
    image_fields = [f for f in tool.inputs if f.kind == "image"]
    if not image_fields:
        raise VchatError(f"{tool.name} takes no image; `vchat batch` runs a tool over images")
    if image_fields[0].name not in named:
        named[image_fields[0].name] = INPUT_HANDLE
    prompt = job.prompt
    for spec in tool.inputs:
        if spec.kind == "text" and spec.required and spec.name not in named and prompt:
            named[spec.name] = prompt
            prompt = None
    if prompt:
        raise VchatError(f"{tool.name} has no text input for {prompt!r}; use --arg KEY=VALUE")
    return named


def check_job(tool: Tool, job: Job) -> None:
    """Bind the inputs once before starting, so a bad --arg fails at once rather than on every image."""

    def resolve(name: str) -> ImageRef:
        if name.strip().lower() != INPUT_HANDLE:
            raise VchatError(f"{name!r}: in a batch the only image is the input itself")
        return ImageRef(INPUT_HANDLE, Path("input.png"))

    bind_named(type(tool), named_inputs(tool, job), resolve)
