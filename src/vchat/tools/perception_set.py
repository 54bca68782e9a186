"""The perception tools (caption, QA, detectors, detection, segmentation), as one tuple for the registry."""

from __future__ import annotations

from vchat.tools.background import RemoveBackground
from vchat.tools.base import Tool
from vchat.tools.caption import CaptionImage
from vchat.tools.depth import EstimateDepth, EstimateNormals
from vchat.tools.detect import DetectObjects
from vchat.tools.hed import DetectHed, DetectScribble
from vchat.tools.lines import DetectLines
from vchat.tools.pose import DetectPose
from vchat.tools.segment import SegmentAnything, SegmentObject
from vchat.tools.semantic import SegmentSemantic
from vchat.tools.vqa import AnswerQuestion

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
