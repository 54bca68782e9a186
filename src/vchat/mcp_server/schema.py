"""JSON schemas of the MCP tools, rendered from the same Field specs the prompt is built from."""

from __future__ import annotations

from typing import Any

from vchat.tools.base import Field, Tool

# What an image input accepts over MCP (the prompt's own wording speaks of session handles only).
IMAGE_FORMS = (
    "an image: a handle from an earlier call (img3), a file path under the folders the server allows, or a data: URI"
)

_JSON_TYPES = {"image": "string", "text": "string", "int": "integer", "float": "number", "bool": "boolean"}


def field_schema(spec: Field) -> dict[str, Any]:
    """One field as a JSON schema property: type, range, choices, default and description."""
    prop: dict[str, Any] = {"type": "string" if spec.kind == "choice" else _JSON_TYPES[spec.kind]}
    description = spec.description
    if spec.kind == "image":
        description = f"{description}; {IMAGE_FORMS}"
    prop["description"] = description
    if spec.kind == "choice":
        prop["enum"] = list(spec.choices)
    if spec.minimum is not None:
        prop["minimum"] = int(spec.minimum) if spec.kind == "int" else spec.minimum
    if spec.maximum is not None:
        prop["maximum"] = int(spec.maximum) if spec.kind == "int" else spec.maximum
    if not spec.required:
        prop["default"] = spec.default
    return prop


def input_schema(tool: type[Tool]) -> dict[str, Any]:
    """The tool's input schema: one property per declared field, required fields listed, nothing else allowed."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {spec.name: field_schema(spec) for spec in tool.inputs},
        "additionalProperties": False,
    }
    required = [spec.name for spec in tool.inputs if spec.required]
    if required:
        schema["required"] = required
    return schema


# Every tool returns the same structured result: the observation and the images it made.
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "what the tool did (the observation vchat's own model reads)"},
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "handle": {"type": "string", "description": "name to pass to a later call (img3)"},
                    "path": {"type": "string", "description": "the full-size PNG in the server's session folder"},
                    "uri": {"type": "string", "description": "resource URI of the full-size PNG"},
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "tool": {"type": ["string", "null"]},
                    "parents": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["handle", "path", "uri", "width", "height"],
            },
        },
        "degraded": {"type": ["string", "null"], "description": "set when the tool ran in a degraded mode"},
    },
    "required": ["text", "images"],
}
