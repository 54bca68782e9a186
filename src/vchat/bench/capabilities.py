"""Tool names to capabilities: one normalising function for today's tool names and the family forms.

The bench states what it expects in capabilities (`edit`, `map:canny`, `from_map:depth`,
`transform:flip`…), never in tool names, so a task keeps meaning the same thing when tools
are merged into families (one tool for the eight condition maps with a `kind` input, one
for generating from a map, one for the transforms) and the old names live on as aliases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vchat.tools.base import Tool

# The eight condition kinds, under the spellings models and families use for them.
CONDITION_KINDS = ("canny", "lines", "hed", "scribble", "pose", "depth", "normal", "segmentation")
_KIND_SYNONYMS = {
    "canny": "canny",
    "edges": "canny",
    "edge": "canny",
    "lines": "lines",
    "line": "lines",
    "mlsd": "lines",
    "hed": "hed",
    "softedge": "hed",
    "scribble": "scribble",
    "pose": "pose",
    "openpose": "pose",
    "depth": "depth",
    "normal": "normal",
    "normals": "normal",
    "segmentation": "segmentation",
    "seg": "segmentation",
    "semantic": "segmentation",
}
_TRANSFORMS = ("resize", "crop", "rotate", "flip", "grayscale")

# Today's tool names (before the families land) and what each does.
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
# Input names a family tool may use for its selector (condition kind, transform operation).
_SELECTORS = ("kind", "condition", "map", "op", "operation", "transform", "action")


def _selector(args: Mapping[str, Any]) -> str | None:
    for key in _SELECTORS:
        value = args.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower().replace("-", "_").replace(" ", "_")
    return None


def _registry_capability(tool: str, args: Mapping[str, Any]) -> str | None:
    """The capability tool a call reaches, from the registry once it knows families (else None)."""
    from vchat.tools import registry

    resolve = getattr(registry, "capability", None)
    if resolve is None:
        return None
    try:
        found = resolve(tool, args)
    except Exception:  # a family given a selector it lacks: left to the rules below
        return None
    return found if isinstance(found, str) else None


def capability_of(tool: str, args: Mapping[str, Any] | None = None) -> str:
    """What a call does, whatever the tool is called: `edit`, `map:canny`, `transform:flip`…

    Unknown names come back as `unknown:NAME`, so a wrong tool is scored as a wrong choice.
    """
    args = dict(args or {})
    name = tool.strip().lower()
    if name in NAMED:
        return NAMED[name]
    reached = _registry_capability(tool.strip(), args)
    if reached is not None and reached.lower() in NAMED:
        return NAMED[reached.lower()]
    chosen = _selector(args)
    if chosen is not None:
        kind = _KIND_SYNONYMS.get(chosen)
        if kind is not None and any(word in name for word in ("generate", "from", "controlnet")):
            return f"from_map:{kind}"
        if kind is not None and any(word in name for word in ("map", "condition", "detect", "annotat", "estimate")):
            return f"map:{kind}"
        op = chosen.removesuffix("_image")
        if op in ("greyscale", "gray", "grey"):
            op = "grayscale"
        if op in _TRANSFORMS and ("transform" in name or "image" in name):
            return f"transform:{op}"
    return f"unknown:{name}"


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
    """The tools the model is offered (a family hides its members, once the registry has families)."""
    from vchat.tools import base

    listed = list(classes)
    offered = getattr(base, "offered", None)
    return list(offered(listed)) if offered is not None else listed


def session_classes() -> list[type[Tool]]:
    """The tool classes a chat session gets (capabilities, and families where they exist)."""
    from vchat.tools.registry import all_tools

    return [type(tool) for tool in all_tools()]


def produces_image(capability: str) -> bool:
    """True when the capability's result is a new image."""
    return capability not in TEXT_CAPABILITIES and not capability.startswith("unknown:")


def all_capabilities() -> list[str]:
    """Every capability vchat offers today, in a stable order."""
    return list(dict.fromkeys(NAMED.values()))
