"""The generation and editing tools (Stable Diffusion family), as one tuple for the registry."""

from __future__ import annotations

from vchat.tools.base import Tool

GENERATION_TOOLS: tuple[type[Tool], ...] = ()
