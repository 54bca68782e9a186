"""The perception tools (caption, QA, detectors, detection, segmentation), as one tuple for the registry."""

from __future__ import annotations

from vchat.tools.base import Tool

PERCEPTION_TOOLS: tuple[type[Tool], ...] = ()
