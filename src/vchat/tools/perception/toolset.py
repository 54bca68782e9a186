"""The perception tools (caption, QA, detectors, detection, segmentation), as one tuple for the registry."""

from __future__ import annotations

from vchat.tools.base import Tool
from vchat.tools.maps.hed import DetectHed, DetectScribble
from vchat.tools.maps.lines import DetectLines
from vchat.tools.maps.pose import DetectPose
from vchat.tools.perception.background import RemoveBackground
from vchat.tools.perception.caption import CaptionImage
from vchat.tools.perception.depth import EstimateDepth, EstimateNormals
from vchat.tools.perception.detect import DetectObjects
from vchat.tools.perception.segment import SegmentAnything, SegmentObject
from vchat.tools.perception.semantic import SegmentSemantic
from vchat.tools.perception.vqa import AnswerQuestion

PERCEPTION_TOOLS: tuple[type[Tool], ...] = (
    CaptionImage,
    AnswerQuestion,
    DetectLines,
    DetectHed,
    DetectScribble,
    DetectPose,
    EstimateDepth,
    EstimateNormals,
    SegmentSemantic,
    DetectObjects,
    SegmentObject,
    SegmentAnything,
    RemoveBackground,
)
