"""The tool set: every tool class vchat ships, looked up by name."""

from __future__ import annotations

from vchat.tools.base import Tool
from vchat.tools.canny import CannyEdges
from vchat.tools.generation_set import GENERATION_TOOLS
from vchat.tools.perception_set import PERCEPTION_TOOLS
from vchat.tools.transform import CropImage, FlipImage, GrayscaleImage, ResizeImage, RotateImage

# Model-free tools first: they run with no weights at all.
TOOL_CLASSES: tuple[type[Tool], ...] = (
    CannyEdges,
    ResizeImage,
    CropImage,
    RotateImage,
    FlipImage,
    GrayscaleImage,
    *PERCEPTION_TOOLS,
    *GENERATION_TOOLS,
)


def all_tools() -> list[Tool]:
    """One instance of every tool; construction is cheap (no weights are loaded)."""
    return [cls() for cls in TOOL_CLASSES]


def tool_class(name: str) -> type[Tool] | None:
    """The tool class with this name, if any."""
    return next((cls for cls in TOOL_CLASSES if cls.name == name), None)
