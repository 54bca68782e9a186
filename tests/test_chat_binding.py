from __future__ import annotations

import pytest

from vchat.chat.binding import bind_input, bind_named, expected_shape
from vchat.errors import ToolInputError
from vchat.tools.base import Field, Tool
from vchat.tools.maps.canny import CannyEdges


class Replace(Tool):
    name = "replace_object"
    description = "replace"
    inputs = (
        Field("image", "image", "img"),
        Field("object", "text", "what"),
        Field("replacement", "text", "with what"),
        Field("steps", "int", "steps", default=20, minimum=1, maximum=100),
    )


class NoInput(Tool):
    name = "list_things"
    description = "no input"


def resolve(name: str) -> str:
    if name not in ("img1", "img2"):
        raise ToolInputError(f"unknown image {name}")
    return f"<{name}>"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"image": "img1", "low": 50, "high": 120}', {"image": "<img1>", "low": 50, "high": 120}),
        ('{"image_path": "img2"}', {"image": "<img2>", "low": 100, "high": 200}),
        ("img1", {"image": "<img1>", "low": 100, "high": 200}),
        ('"img1"', {"image": "<img1>", "low": 100, "high": 200}),
        ("image=img1, low=10, high=20", {"image": "<img1>", "low": 10, "high": 20}),
        ('{"image": "img1", "low": "30"}', {"image": "<img1>", "low": 30, "high": 200}),
        ("img1, high=90", {"image": "<img1>", "low": 100, "high": 90}),
        ("{'image': 'img1', 'low': 7}", {"image": "<img1>", "low": 7, "high": 200}),
        ("img2, 10, high=90", {"image": "<img2>", "low": 10, "high": 90}),
    ],
)
def test_canny_bindings(raw: str, expected: dict[str, object]) -> None:
    assert bind_input(CannyEdges, raw, resolve) == expected


def test_comma_form_splits_only_as_many_times_as_required_fields() -> None:
    bound = bind_input(Replace, "img2, the car, a red bicycle, shiny and new", resolve)
    assert bound == {"image": "<img2>", "object": "the car", "replacement": "a red bicycle, shiny and new", "steps": 20}


def test_json_keeps_commas_in_values() -> None:
    bound = bind_input(Replace, '{"image": "img1", "object": "car", "replacement": "a, b", "steps": 5}', resolve)
    assert bound["replacement"] == "a, b"
    assert bound["steps"] == 5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("img1", "got 1 value(s) for 3 required inputs"),
        ('{"image": "img1", "object": "car"}', "missing 'replacement'"),
        ('{"image": "img1", "object": "car", "replacement": "x", "steps": 0}', "at least 1"),
        ('{"image": "img1", "object": "car", "replacement": "x", "steps": 2.5}', "whole number"),
        ('{"image": "img1", "object": "car", "replacement": "x", "colour": "red"}', "has no input 'colour'"),
        ('{"image": "img1", "object": "car", "replacement": "x", "steps": "many"}', "must be a number"),
    ],
)
def test_bad_inputs_say_what_was_expected(raw: str, message: str) -> None:
    with pytest.raises(ToolInputError) as info:
        bind_input(Replace, raw, resolve)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_image_propagates_the_resolver_error() -> None:
    with pytest.raises(ToolInputError, match="unknown image img9"):
        bind_input(CannyEdges, "img9", resolve)


def test_tool_without_inputs_ignores_input() -> None:
    assert bind_input(NoInput, "", resolve) == {}
    assert bind_input(NoInput, "whatever", resolve) == {}


def test_named_binding_used_by_cli_args() -> None:
    assert bind_named(CannyEdges, {"image": "img1", "low": "5"}, resolve) == {"image": "<img1>", "low": 5, "high": 200}


def test_expected_shape_lists_fields_and_optional_ones() -> None:
    text = expected_shape(CannyEdges)
    assert text.startswith('canny_edges expects {"image": "<image name>"')
    assert "(low, high optional)" in text
