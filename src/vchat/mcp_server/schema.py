"""JSON schemas of the MCP tools: the prompt's own rendering of the field specs, image inputs described for MCP."""

from __future__ import annotations

from typing import Any

from vchat.tools.base import Tool
from vchat.tools.schema import input_schema as prompt_schema

# What an image input accepts over MCP (the prompt's own wording speaks of session handles only).
IMAGE_FORMS = (
    "an image: a handle from an earlier call (img3), a file path under the folders the server allows, or a data: URI"
)


def input_schema(tool: type[Tool]) -> dict[str, Any]:
    """vchat.tools.schema.input_schema (types, ranges, choices, defaults), with image fields described for MCP."""
    schema = prompt_schema(tool)
    for spec in tool.inputs:
        if spec.kind == "image":
            schema["properties"][spec.name]["description"] = f"{spec.description}; {IMAGE_FORMS}"
        elif spec.kind == "images":
            schema["properties"][spec.name]["description"] = f"{spec.description}; each one {IMAGE_FORMS}"
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
