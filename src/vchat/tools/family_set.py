"""The three families the model sees: condition maps, generation from a map, and the transforms."""

from __future__ import annotations

from typing import ClassVar

from vchat.tools.base import Field, Tool
from vchat.tools.family import ToolFamily, family_inputs
from vchat.tools.generation.controlnet import CONTROLNET_TOOLS
from vchat.tools.maps.canny import CannyEdges
from vchat.tools.maps.conditions import CONDITIONS
from vchat.tools.maps.hed import DetectHed, DetectScribble
from vchat.tools.maps.lines import DetectLines
from vchat.tools.maps.pose import DetectPose
from vchat.tools.perception.depth import EstimateDepth, EstimateNormals
from vchat.tools.perception.semantic import SegmentSemantic
from vchat.tools.transform import CropImage, FlipImage, GrayscaleImage, ResizeImage, RotateImage

# One order for both map families, so `kind` reads the same in each.
_MAP_DETECTORS: dict[str, type[Tool]] = {
    "canny": CannyEdges,
    "lines": DetectLines,
    "hed": DetectHed,
    "scribble": DetectScribble,
    "pose": DetectPose,
    "depth": EstimateDepth,
    "normal": EstimateNormals,
    "segmentation": SegmentSemantic,
}


class DetectMap(ToolFamily):
    """The eight condition-map detectors as one tool."""

    name = "detect_map"
    selector = "kind"
    members: ClassVar[dict[str, type[Tool]]] = dict(_MAP_DETECTORS)
    description = (
        "Make a condition map of an image, chosen by kind: canny (edges), lines (straight lines, M-LSD), "
        "hed (soft edges), scribble (rough outlines), pose (OpenPose stick figures), depth (near is white), "
        "normal (surface orientation), segmentation (150 scene classes, named). The map is a new image, "
        "usable as input for generate_from_map with the same kind."
    )
    brief = "condition map of an image (segmentation also names classes); input for generate_from_map"
    inputs = family_inputs(
        Field("image", "image", "the image to make the map of"),
        Field("kind", "choice", "which map", choices=tuple(members)),
        members,
    )


class GenerateFromMap(ToolFamily):
    """The eight ControlNet generations as one tool."""

    name = "generate_from_map"
    selector = "kind"
    members: ClassVar[dict[str, type[Tool]]] = {
        kind: next(t for t in CONTROLNET_TOOLS if t.name == f"generate_from_{kind}") for kind in _MAP_DETECTORS
    }
    description = (
        "Create a new image that follows a condition map of an image (ControlNet): kind says which map "
        "(canny, lines, hed, scribble, pose, depth, normal, segmentation). Give a photo (the map is "
        "detected) or a map made by detect_map. Returns the new image."
    )
    brief = "new image following the map of an image (a photo is mapped first)"
    inputs = family_inputs(
        Field("image", "image", "a photo, or a condition map of this kind"),
        Field("kind", "choice", "which condition map to follow", choices=tuple(members)),
        members,
    )


class Transform(ToolFamily):
    """The model-free edits as one tool."""

    name = "transform"
    selector = "op"
    members: ClassVar[dict[str, type[Tool]]] = {
        "resize": ResizeImage,
        "crop": CropImage,
        "rotate": RotateImage,
        "flip": FlipImage,
        "grayscale": GrayscaleImage,
    }
    description = (
        "Edit the geometry or colour of an image without a model, chosen by op: resize (width and/or height, "
        "0 keeps the aspect ratio, or scale), crop (left, top, right, bottom in pixels), rotate (degrees, "
        "counter-clockwise), flip (direction horizontal or vertical), grayscale."
    )
    brief = (
        "resize: width/height (0 keeps aspect) or scale; crop: left, top, right, bottom px; "
        "rotate: degrees ccw; flip: direction=horizontal|vertical"
    )
    inputs = family_inputs(
        Field("image", "image", "the image to change"),
        Field("op", "choice", "which edit", choices=tuple(members)),
        members,
    )


FAMILY_CLASSES: tuple[type[ToolFamily], ...] = (DetectMap, GenerateFromMap, Transform)

# Conditions and map kinds must stay one list: a new condition needs its detector here.
assert set(_MAP_DETECTORS) == set(CONDITIONS), "detect_map kinds must match the ControlNet conditions"
