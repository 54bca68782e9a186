"""The generation and editing tools (Stable Diffusion family), as one tuple for the registry."""

from __future__ import annotations

from vchat.tools.base import Tool
from vchat.tools.generation.controlnet import CONTROLNET_TOOLS
from vchat.tools.generation.generate import GenerateImage
from vchat.tools.generation.inpaint import RemoveObject, ReplaceObject
from vchat.tools.generation.instruct import InstructEdit
from vchat.tools.generation.outpaint import ExtendImage

GENERATION_TOOLS: tuple[type[Tool], ...] = (
    GenerateImage,
    InstructEdit,
    RemoveObject,
    ReplaceObject,
    *CONTROLNET_TOOLS,
    ExtendImage,
)
