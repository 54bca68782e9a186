"""Tool inputs as JSON Schema: one rendering of the field specs for native tool calling and MCP.

input_schema(tool_cls) -> dict      # {"type": "object", "properties": ..., "required": [...]}
function_spec(tool_cls) -> dict     # OpenAI's {"type": "function", "function": {...}}
"""

from __future__ import annotations

from typing import Any

from vchat.tools.base import Field, Tool

_TYPES = {"image": "string", "text": "string", "int": "integer", "float": "number", "bool": "boolean"}


def field_schema(spec: Field) -> dict[str, Any]:
    """One input as a JSON Schema property (type, enum, bounds, default, description)."""
    description = spec.description
    if spec.kind == "image":
        description = f"image name such as img1: {description}"
    prop: dict[str, Any] = {"type": _TYPES.get(spec.kind, "string"), "description": description}
    if spec.kind == "images":
        prop = {"type": "array", "items": {"type": "string"}, "description": f"image names such as img2: {description}"}
        if spec.maximum is not None:
            prop["maxItems"] = int(spec.maximum)
        if not spec.required:
            prop["default"] = list(spec.default or ())
        return prop
    if spec.kind == "choice":
        prop["enum"] = list(spec.choices)
    if spec.minimum is not None:
        prop["minimum"] = spec.minimum
    if spec.maximum is not None:
        prop["maximum"] = spec.maximum
    if not spec.required and spec.default is not None:
        prop["default"] = spec.default
    elif not spec.required:
        prop["description"] = f"{description} (only for some kinds; leave out otherwise)"
    return prop


def input_schema(tool: type[Tool]) -> dict[str, Any]:
    """The JSON Schema of a tool's inputs: an object with one property per declared field.

    Required fields are listed in "required"; optional ones carry their default. Unknown
    properties are refused ("additionalProperties": false), as the binder refuses them.
    """
    return {
        "type": "object",
        "properties": {spec.name: field_schema(spec) for spec in tool.inputs},
        "required": [spec.name for spec in tool.inputs if spec.required],
        "additionalProperties": False,
    }


def function_spec(tool: type[Tool]) -> dict[str, Any]:
    """The tool in OpenAI's `tools` shape, as lean as the text prompt (it is sent with every request).

    The function keeps the short text the text prompt uses; properties keep their type, enum
    and default, but not their descriptions (image fields say "image name") nor their bounds,
    which the binder checks and explains in the observation when a value is out of range.
    """
    schema = input_schema(tool)
    images = {spec.name for spec in tool.inputs if spec.kind == "image"}
    lean = ("description", "minimum", "maximum")
    schema["properties"] = {
        name: {"type": "string", "description": "image name"}
        if name in images
        else {key: value for key, value in prop.items() if key not in lean}
        for name, prop in schema["properties"].items()
    }
    del schema["additionalProperties"]
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.brief or tool.description, "parameters": schema},
    }
