"""What the next ReAct reply may contain: the tools a model may call (with their declared fields) and the images
that exist. The agent hands it to a backend that can constrain its decoding; others never see it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolShape:
    """One callable tool: its name and its declared inputs (`tools.base.Field` objects, read by attribute)."""

    name: str
    fields: tuple[Any, ...]


@dataclass(frozen=True)
class ReplySpec:
    """The tools a reply may name and the image handles its inputs may name."""

    tools: tuple[ToolShape, ...]
    handles: tuple[str, ...]

    @classmethod
    def of(cls, tools: Iterable[Any], handles: Iterable[str]) -> ReplySpec:
        """From tool objects or classes (anything with `name` and `inputs`) and the session's handles."""
        shapes = [shape for tool in tools for shape in _shapes(tool)]
        return cls(tuple(sorted(shapes, key=lambda shape: shape.name)), tuple(handles))


def _shapes(tool: Any) -> list[ToolShape]:
    """One shape per way to call the tool: a family (`kind`, `op`) takes a member's own fields for each choice."""
    members = getattr(tool, "members", None)
    selector = getattr(tool, "selector", None)
    if not isinstance(members, dict) or not isinstance(selector, str):
        return [ToolShape(str(tool.name), tuple(tool.inputs))]
    chooser = next(spec for spec in tool.inputs if spec.name == selector)
    shapes = []
    for choice, member in members.items():
        images = [spec for spec in member.inputs if spec.kind == "image"]
        rest = [spec for spec in member.inputs if spec.kind != "image"]
        fields = (*images, dataclasses.replace(chooser, choices=(choice,)), *rest)
        shapes.append(ToolShape(str(tool.name), fields))
    return shapes
