"""An MCP tool's JSON input schema read as vchat Fields, with the image inputs found and how each wants its image."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vchat.tools.base import REQUIRED, Field

# How an image input is sent: a data: URI, bare base64, a file path, or MCP image content (an object).
IMAGE_FORMS = ("data_uri", "base64", "path", "content")
_IMAGE_WORDS = re.compile(r"(?:^|[_\W])(image|img|photo|picture|pic|frame|mask)(?:$|[_\W]|s\b)", re.IGNORECASE)
# Names that mention an image but are not one (an image's prompt, size or format).
_NOT_IMAGE = re.compile(
    r"prompt|text|caption|descr|instruction|style|size|width|height|format|count|num|type|mode|steps|seed|name",
    re.IGNORECASE,
)
_REFERENCE = re.compile(r"\b(path|file|uri|url|data:|base64|handle)\b", re.IGNORECASE)
BRIEF_MAX = 110  # characters of a remote tool's description the system prompt keeps
DESCRIPTION_MAX = 400


@dataclass(frozen=True)
class RemoteInputs:
    """The fields vchat binds, and how each is sent back to the server."""

    fields: tuple[Field, ...]
    image_forms: dict[str, str]  # field name -> one of IMAGE_FORMS
    json_fields: frozenset[str]  # arrays and objects: the model writes JSON text, sent parsed


def _kind_of(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the first that is not null
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None and isinstance(prop.get("anyOf"), list):
        kinds = [p.get("type") for p in prop["anyOf"] if isinstance(p, dict) and p.get("type") != "null"]
        kind = kinds[0] if kinds else "string"
    return str(kind or "string")


def image_form(name: str, prop: dict[str, Any]) -> str | None:
    """How this input takes an image, or None when it is not an image input."""
    kind = _kind_of(prop)
    text = f"{prop.get('description') or ''} {prop.get('title') or ''}"
    media = str(prop.get("contentMediaType") or "")
    named = bool(_IMAGE_WORDS.search(name)) and not _NOT_IMAGE.search(name)
    if kind == "object":
        keys = set(prop.get("properties") or {})
        if {"data", "mimeType"} <= keys or named:
            return "content"
        return None
    if kind != "string":
        return None
    described = bool(_IMAGE_WORDS.search(text)) and bool(_REFERENCE.search(text))
    if not (named or described or media.startswith("image/")):
        return None
    lowered = f"{name} {text}".lower()
    if "data:" in lowered or "data uri" in lowered or "uri" in lowered or "url" in lowered:
        return "data_uri"
    if "base64" in lowered or prop.get("contentEncoding") == "base64":
        return "base64"
    if "path" in lowered or "file" in lowered:
        return "path"
    return "data_uri"


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def brief(description: str) -> str:
    """The first sentence of a description, short enough for one prompt line."""
    first = " ".join(description.split()).split(". ")[0].rstrip(".")
    return _one_line(first, BRIEF_MAX) if first else ""


def describe(description: str | None, fallback: str) -> str:
    """A remote description as one line for `vchat tools` (first paragraph, capped)."""
    paragraph = (description or "").strip().split("\n\n")[0]
    return _one_line(paragraph, DESCRIPTION_MAX) or fallback


def _field(name: str, prop: dict[str, Any], required: bool, form: str | None) -> Field:
    description = _one_line(str(prop.get("description") or prop.get("title") or name), 120)
    default: Any = REQUIRED if required else prop.get("default")
    if form is not None:
        return Field(name, "image", description, REQUIRED if required else None)
    kind = _kind_of(prop)
    lo, hi = prop.get("minimum"), prop.get("maximum")
    minimum = float(lo) if isinstance(lo, int | float) else None
    maximum = float(hi) if isinstance(hi, int | float) else None
    enum = prop.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        if default not in (REQUIRED, None) and default not in enum:
            default = None
        return Field(name, "choice", description, default, choices=tuple(enum))
    if kind == "integer":
        ok = default is REQUIRED or isinstance(default, int)
        return Field(name, "int", description, default if ok else None, minimum=minimum, maximum=maximum)
    if kind == "number":
        ok = default is REQUIRED or isinstance(default, int | float)
        return Field(name, "float", description, default if ok else None, minimum=minimum, maximum=maximum)
    if kind == "boolean":
        return Field(name, "bool", description, default if default is REQUIRED or isinstance(default, bool) else None)
    if kind in ("array", "object"):
        return Field(name, "text", f"{description} (JSON)", REQUIRED if required else None)
    return Field(name, "text", description, default if default is REQUIRED or isinstance(default, str) else None)


def read_inputs(schema: dict[str, Any] | None) -> RemoteInputs:
    """The Fields of a tool's input schema, required ones first (the order binding fills positional input in)."""
    schema = schema or {}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fields: list[Field] = []
    forms: dict[str, str] = {}
    json_fields: set[str] = set()
    for name, prop in props.items():
        if not isinstance(prop, dict):
            continue
        form = image_form(name, prop)
        if form is not None:
            forms[name] = form
        elif _kind_of(prop) in ("array", "object"):
            json_fields.add(name)
        fields.append(_field(name, prop, name in required, form))
    fields.sort(key=lambda f: not f.required)
    return RemoteInputs(tuple(fields), forms, frozenset(json_fields))
