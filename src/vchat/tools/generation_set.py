"""The generation and editing tools (Stable Diffusion family), as one tuple for the registry."""

from __future__ import annotations

from vchat.tools.base import Tool
from vchat.tools.controlnet import CONTROLNET_TOOLS
from vchat.tools.generate import GenerateImage
from vchat.tools.inpaint_object import RemoveObject, ReplaceObject
from vchat.tools.instruct import InstructEdit
from vchat.tools.outpaint import ExtendImage

GENERATION_TOOLS: tuple[type[Tool], ...] = (
    GenerateImage,
    InstructEdit,
    RemoveObject,
    ReplaceObject,
    *CONTROLNET_TOOLS,
    ExtendImage,
)
