"""chat.calls: one lookup and one way of filling a person's tool call, shared by run --tool, /tool, batch and MCP."""

from __future__ import annotations

import pytest

from vchat.chat.calls import UnknownTool, fill_inputs, find_tool
from vchat.errors import ToolInputError, UsageError
from vchat.tools.registry import all_tools

TOOLS = {tool.name: tool for tool in all_tools()}


def test_an_unknown_tool_names_close_ones_and_where_they_are_listed() -> None:
    with pytest.raises(UnknownTool, match=r"unknown tool 'flip'; did you mean flip_image\? /tools lists them"):
        find_tool(TOOLS, "flip", lister="/tools")
    assert issubclass(UnknownTool, UsageError)  # a command line naming no tool exits 2
    assert find_tool(TOOLS, "canny_edges").name == "canny_edges"


def test_images_fill_the_image_fields_in_order_and_text_the_required_text_field() -> None:
    cls = type(TOOLS["instruct_edit"])
    named = fill_inputs(cls, {"steps": "5"}, ["img1"], "make it snowy")
    image = next(f.name for f in cls.inputs if f.kind == "image")
    text = next(f.name for f in cls.inputs if f.kind == "text" and f.required)
    assert named[image] == "img1" and named[text] == "make it snowy" and named["steps"] == "5"


def test_a_value_given_by_name_is_not_overwritten() -> None:
    cls = type(TOOLS["flip_image"])
    assert fill_inputs(cls, {"image": "img2"}, ["img1"]) == {"image": "img2"}


def test_text_with_no_field_to_go_to_says_how_to_give_values() -> None:
    with pytest.raises(ToolInputError, match=r"flip_image has no text input for 'hello'; use --arg KEY=VALUE"):
        fill_inputs(type(TOOLS["flip_image"]), {}, ["img1"], "hello")
