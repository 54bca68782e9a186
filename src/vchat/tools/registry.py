"""The tool set: every capability vchat ships, the families the model is offered, and old names as aliases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vchat.tools.base import Tool, offered
from vchat.tools.family import ToolFamily
from vchat.tools.family_set import FAMILY_CLASSES
from vchat.tools.generation.toolset import GENERATION_TOOLS
from vchat.tools.maps.canny import CannyEdges
from vchat.tools.perception.toolset import PERCEPTION_TOOLS
from vchat.tools.transform import CropImage, FlipImage, GrayscaleImage, ResizeImage, RotateImage

# Every capability, one tool class each (what `vchat tools` lists and the runtime benchmark maps).
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

# What the model is offered by default: the families and the capabilities outside them.
OFFERED: tuple[type[Tool], ...] = tuple(offered([*TOOL_CLASSES, *FAMILY_CLASSES]))


def all_tools() -> list[Tool]:
    """One instance of every capability and every family; construction is cheap (no weights are loaded)."""
    return [cls() for cls in (*TOOL_CLASSES, *FAMILY_CLASSES)]


def tool_class(name: str) -> type[Tool] | None:
    """The tool class with this name (a capability or a family), if any."""
    return next((cls for cls in (*TOOL_CLASSES, *FAMILY_CLASSES) if cls.name == name), None)


def family_of(name: str) -> tuple[type[ToolFamily], str] | None:
    """(family, selector value) when `name` is an old capability name a family now covers."""
    for family in FAMILY_CLASSES:
        choice = family.choice_of(name)
        if choice is not None:
            return family, choice
    return None


def canonical(name: str, args: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Map a tool name and its named inputs to the offered tool they stand for.

    Old capability names that a family covers become the family plus its selector:
    ``canonical("canny_edges", {"image": "img1"}) == ("detect_map", {"image": "img1", "kind": "canny"})``
    and ``canonical("crop_image", {...})`` is ``("transform", {..., "op": "crop"})``. Names the model
    is offered directly (``instruct_edit``, ``detect_map``) and unknown names come back unchanged,
    with a copy of the inputs. Matching is exact (case and spelling as the registry writes them).
    """
    out = dict(args or {})
    found = family_of(name)
    if found is None:
        return name, out
    family, choice = found
    out[family.selector] = choice
    return family.name, out


def capability(name: str, args: Mapping[str, Any] | None = None) -> str:
    """The capability (old tool name) a call reaches: `detect_map` with kind=canny is `canny_edges`."""
    family = next((f for f in FAMILY_CLASSES if f.name == name), None)
    if family is None or args is None:
        return name
    choice = args.get(family.selector)
    return family.members[choice].name if isinstance(choice, str) and choice in family.members else name
