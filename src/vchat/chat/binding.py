"""Bind a tool call's raw input text to the tool's declared fields, with typed coercion."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from vchat.errors import ToolInputError, UsageError
from vchat.tools.base import Field, Tool

ImageResolver = Callable[[str], Any]

# Keys models often use for the image field instead of its declared name.
_IMAGE_ALIASES = ("image", "img", "image_path", "image_name", "path", "input_image", "file", "filename", "handle")
# `name=value` or `name: value` pairs in the comma form.
_PAIR_RE = re.compile(r"^\s*([A-Za-z_][\w ]*?)\s*[=:]\s*(.*?)\s*$", re.DOTALL)


def expected_shape(tool: type[Tool]) -> str:
    """The input a tool expects, as a JSON example shown to the model after a mistake."""
    if not tool.inputs:
        return f"{tool.name} takes no input"
    parts = []
    for f in tool.inputs:
        example = "<image name>" if f.kind == "image" else f"<{f.kind}>"
        if f.kind == "images":
            parts.append(f'"{f.name}": ["<image name>", …]')
            continue
        parts.append(f'"{f.name}": "{example}"' if f.kind in ("image", "text", "choice") else f'"{f.name}": {example}')
    optional = [f.name for f in tool.inputs if not f.required]
    hint = f" ({', '.join(optional)} optional)" if optional else ""
    return f"{tool.name} expects {{{', '.join(parts)}}}{hint}"


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1].strip()
    return text


def coerce(tool: type[Tool], spec: Field, value: Any, resolve_image: ImageResolver | None) -> Any:
    """Convert one raw value to the field's kind, checking choices and bounds."""
    where = f"{tool.name}: {spec.name}"
    if spec.kind == "image":
        if not isinstance(value, str):
            raise ToolInputError(f"{where} must be an image name such as img1, not {value!r}")
        name = _strip_quotes(value)
        return resolve_image(name) if resolve_image is not None else name
    if spec.kind == "images":
        return _coerce_images(where, spec, value, resolve_image)
    if spec.kind == "text":
        if isinstance(value, (dict, list)):
            raise ToolInputError(f"{where} must be text, not {type(value).__name__}")
        text = _strip_quotes(str(value))
        if spec.required and not text:
            raise ToolInputError(f"{where} must not be empty")
        return text
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        text = _strip_quotes(str(value)).lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise ToolInputError(f"{where} must be true or false, not {value!r}")
    if spec.kind == "choice":
        text = _strip_quotes(str(value)).lower()
        for choice in spec.choices:
            if text == choice.lower():
                return choice
        raise ToolInputError(f"{where} must be one of {', '.join(spec.choices)}, not {value!r}")
    # int / float
    number: float
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(_strip_quotes(str(value))) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise ToolInputError(f"{where} must be a number, not {value!r}") from None
    if spec.kind == "int":
        if number != int(number):
            raise ToolInputError(f"{where} must be a whole number, not {value!r}")
        number = int(number)
    if spec.minimum is not None and number < spec.minimum:
        raise ToolInputError(f"{where} must be at least {spec.minimum:g}, not {number:g}")
    if spec.maximum is not None and number > spec.maximum:
        raise ToolInputError(f"{where} must be at most {spec.maximum:g}, not {number:g}")
    return number


def _coerce_images(where: str, spec: Field, value: Any, resolve_image: ImageResolver | None) -> list[Any]:
    """A list of image names: a JSON list, or one string of names split at commas or spaces (`img2, img3`)."""
    if isinstance(value, (list, tuple)):
        raw = list(value)
    elif isinstance(value, str):
        raw = [part for part in re.split(r"[,\s]+", _strip_quotes(value).strip("[]")) if part]
    else:
        raise ToolInputError(f'{where} must be a list of image names such as ["img2"], not {value!r}')
    if not all(isinstance(name, str) for name in raw):
        raise ToolInputError(f'{where} must be a list of image names such as ["img2"], not {value!r}')
    names = [_strip_quotes(name) for name in raw if _strip_quotes(name)]
    if spec.maximum is not None and len(names) > spec.maximum:
        raise ToolInputError(f"{where} takes at most {spec.maximum:g} images, not {len(names)}")
    return [resolve_image(name) for name in names] if resolve_image is not None else names


def _field_for_key(tool: type[Tool], key: str) -> Field | None:
    norm = key.strip().lower().replace(" ", "_").replace("-", "_")
    spec = tool.field(norm)
    if spec is not None:
        return spec
    if norm in _IMAGE_ALIASES:
        images = [f for f in tool.inputs if f.kind == "image"]
        if len(images) == 1:
            return images[0]
    return None


def field_for_key(tool: type[Tool], key: str) -> Field | None:
    """The field a name refers to (case, `-` and the usual image aliases forgiven); None when none does."""
    return _field_for_key(tool, key)


def bind_named(tool: type[Tool], values: Mapping[str, Any], resolve_image: ImageResolver | None) -> dict[str, Any]:
    """Bind values given by field name (JSON object, `key=value` pairs, `--arg` flags)."""
    bound: dict[str, Any] = {}
    for key, value in values.items():
        spec = _field_for_key(tool, key)
        if spec is None:
            raise ToolInputError(f"{tool.name} has no input {key!r}; {expected_shape(tool)}")
        bound[spec.name] = coerce(tool, spec, value, resolve_image)
    return _complete(tool, bound)


def _complete(tool: type[Tool], bound: dict[str, Any]) -> dict[str, Any]:
    missing = [f.name for f in tool.inputs if f.required and f.name not in bound]
    if missing:
        raise ToolInputError(f"missing {', '.join(repr(m) for m in missing)}; {expected_shape(tool)}")
    for f in tool.inputs:
        bound.setdefault(f.name, f.default)
    return tool.validate(bound)


def _named_pair(part: str, tool: type[Tool]) -> tuple[Field, str] | None:
    """`low=50` or `low: 50` when `low` is a field of the tool."""
    match = _PAIR_RE.match(part)
    if not match:
        return None
    spec = _field_for_key(tool, match.group(1))
    return (spec, match.group(2)) if spec is not None else None


def _parse_pairs(parts: list[str], tool: type[Tool]) -> dict[str, str] | None:
    """Read `a=1, b=2` when every part names a field of the tool; None otherwise."""
    pairs: dict[str, str] = {}
    for part in parts:
        pair = _named_pair(part, tool)
        if pair is None:
            return None
        pairs[pair[0].name] = pair[1]
    return pairs


def _positional_then_named(parts: list[str], tool: type[Tool]) -> dict[str, str] | None:
    """Read `img1, low=50`: leading values fill the other fields in order, trailing pairs name theirs."""
    for split in range(1, len(parts)):
        if _named_pair(parts[split - 1], tool) is not None:
            return None  # a named value before a positional one: ambiguous, refuse
        named = _parse_pairs(parts[split:], tool)
        if named is None:
            continue
        free = [f.name for f in tool.inputs if f.name not in named]
        if split > len(free):
            return None
        return {**dict(zip(free, (p.strip() for p in parts[:split]), strict=False)), **named}
    return None


def _python_dict(text: str) -> Any:
    """Models sometimes write a Python dict (`{'image': 'img1'}`); read it safely, never eval."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def bind_input(tool: type[Tool], raw: str, resolve_image: ImageResolver | None = None) -> dict[str, Any]:
    """Bind a model's raw Action Input to the tool's fields.

    Accepts a JSON object, a bare string for a tool with one required field, `key=value`
    pairs, or the legacy comma form `img2, a red car` (split only as many times as the
    tool has required fields, so commas inside the last value survive).
    """
    text = raw.strip()
    if not tool.inputs:
        return {}
    required = [f for f in tool.inputs if f.required]
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = _python_dict(text)
        if isinstance(data, dict):
            return bind_named(tool, data, resolve_image)
    if not text:
        return _complete(tool, {})
    parts_all = [p for p in text.split(",") if p.strip()]
    pairs = _parse_pairs(parts_all, tool)
    if pairs:
        return bind_named(tool, pairs, resolve_image)
    mixed = _positional_then_named(parts_all, tool)
    if mixed:
        return bind_named(tool, mixed, resolve_image)
    if len(required) <= 1:
        spec = required[0] if required else tool.inputs[0]
        values = [p.strip() for p in text.split(",")]
        # `img1, vertical`: a non-text first field cannot hold commas, so the rest fill the
        # optional fields in order. Text (a prompt) keeps its commas.
        if spec.kind != "text" and 1 < len(values) <= len(tool.inputs):
            order = [spec, *(f for f in tool.inputs if f is not spec)]
            bound = {f.name: coerce(tool, f, v, resolve_image) for f, v in zip(order, values, strict=False)}
            return _complete(tool, bound)
        return _complete(tool, {spec.name: coerce(tool, spec, text, resolve_image)})
    parts = [p.strip() for p in text.split(",", len(required) - 1)]
    if len(parts) < len(required):
        raise ToolInputError(f"got {len(parts)} value(s) for {len(required)} required inputs; {expected_shape(tool)}")
    bound = {spec.name: coerce(tool, spec, part, resolve_image) for spec, part in zip(required, parts, strict=True)}
    return _complete(tool, bound)


def check_arg_keys(tool: type[Tool], keys: list[str]) -> None:
    """Refuse an `--arg KEY=…` that names no input of `tool` (UsageError, with the keys it does take)."""
    for key in keys:
        if field_for_key(tool, key) is not None:
            continue
        names = [f.name for f in tool.inputs]
        if not names:
            raise UsageError(f"--arg {key}: {tool.name} takes no inputs")
        import difflib

        close = difflib.get_close_matches(key.strip().lower(), names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(
            f"--arg {key}: {tool.name} has no input {key!r}; {hint}it takes {', '.join(names)} "
            f"(`vchat tools -v` describes them)"
        )


def parse_arg_pairs(pairs: list[str]) -> dict[str, str]:
    """`--arg KEY=VALUE` flags as a dict (shared by `vchat run --tool` and `vchat batch`)."""
    args: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--arg {pair!r}: expected KEY=VALUE, e.g. --arg low=50")
        args[key.strip()] = value
    return args
