"""Tool names to capabilities: one normalising function for today's tool names and the family forms.

The bench states what it expects in capabilities (`edit`, `map:canny`, `from_map:depth`,
`transform:flip`…), never in tool names: a model may call the family the prompt offers
(`detect_map` with kind=canny) or the old name it still accepts (`canny_edges`), and both
are the same capability.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vchat.tools.base import Tool

CONDITION_KINDS = ("canny", "lines", "hed", "scribble", "pose", "depth", "normal", "segmentation")
_TRANSFORMS = ("resize", "crop", "rotate", "flip", "grayscale")

# Every capability tool by name (the old names, still callable as aliases), and what each does.
NAMED: Mapping[str, str] = {
    "caption_image": "caption",
    "answer_question": "vqa",
    "generate_image": "generate",
    "instruct_edit": "edit",
    "remove_object": "remove_object",
    "replace_object": "replace_object",
    "detect_objects": "detect",
    "segment_object": "segment_object",
    "segment_anything": "segment_anything",
    "remove_background": "remove_background",
    "extend_image": "extend",
    "canny_edges": "map:canny",
    "detect_lines": "map:lines",
    "detect_hed": "map:hed",
    "detect_scribble": "map:scribble",
    "detect_pose": "map:pose",
    "estimate_depth": "map:depth",
    "estimate_normals": "map:normal",
    "segment_semantic": "map:segmentation",
    **{f"generate_from_{kind}": f"from_map:{kind}" for kind in CONDITION_KINDS},
    **{f"{op}_image": f"transform:{op}" for op in _TRANSFORMS},
}

# Capabilities whose result is text, not a new image.
TEXT_CAPABILITIES = frozenset({"caption", "vqa"})


def capability_of(tool: str, args: Mapping[str, Any] | None = None) -> str:
    """What a call does, whatever the tool is called: `edit`, `map:canny`, `transform:flip`…

    A family call (`detect_map` with kind=depth) is resolved by the registry to the capability
    it reaches; unknown names come back as `unknown:NAME`, so a wrong tool is a wrong choice.
    """
    from vchat.tools.registry import capability

    name = capability(tool, args) if args else tool
    return NAMED.get(name, f"unknown:{name}")


def find_tool(capability: str, tools: Iterable[type[Tool]]) -> tuple[type[Tool], dict[str, Any]]:
    """The tool (and selector input) that does a capability in this tool set; for reference plans.

    A tool named for the capability wins; otherwise a family tool with a choice input is
    tried with each of its choices.
    """
    classes = list(tools)
    for cls in classes:
        if capability_of(cls.name) == capability:
            return cls, {}
    for cls in classes:
        for spec in cls.inputs:
            for choice in spec.choices:
                if capability_of(cls.name, {spec.name: choice}) == capability:
                    return cls, {spec.name: choice}
    raise LookupError(f"no tool does {capability!r}")


def offered_classes(classes: Iterable[type[Tool]]) -> list[type[Tool]]:
    """The tools the model is offered: a family hides its members (still callable by their names)."""
    from vchat.tools.base import offered

    return offered(list(classes))


def session_classes() -> list[type[Tool]]:
    """The tool classes a chat session gets: every capability and every family."""
    from vchat.tools.registry import all_tools

    return [type(tool) for tool in all_tools()]


def produces_image(capability: str) -> bool:
    """True when the capability's result is a new image."""
    return capability not in TEXT_CAPABILITIES and not capability.startswith("unknown:")


def all_capabilities() -> list[str]:
    """Every capability vchat offers today, in a stable order."""
    return list(dict.fromkeys(NAMED.values()))
