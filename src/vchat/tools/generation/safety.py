"""The Stable Diffusion safety checker: configurable, and a blocked image is reported, never saved black.

Setting `safety_checker` (a `Settings` attribute): "on", "off" or "auto" (default). "auto" runs the checker when
the configured `sd15` checkpoint ships one (a `safety_checker/` folder, as stable-diffusion-v1-5 does) and skips it
when the checkpoint has none (community fine-tunes, local test models): vchat never downloads a checker the user's
checkpoint did not come with. "on" with a checkpoint that has none is an error, so a user who asked for filtering
never silently gets none. A flagged image raises ToolError: the model hears that the image was blocked (Visual
ChatGPT saved the black image and reported success).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vchat.errors import ModelLoadError, ToolError
from vchat.tools.base import ToolContext

if TYPE_CHECKING:
    from PIL import Image

CHECKER = "sd15.safety_checker"
FEATURES = "sd15.feature_extractor"
MODES = ("auto", "on", "off")
_ALIASES = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}

BLOCKED = (
    "the safety checker flagged the result as possibly unsafe (NSFW), so no image was saved; tell the user and "
    "suggest a different prompt or seed; do not use another tool to get around it"
)


def mode(settings: Any) -> str:
    """The configured mode, normalised; a bad value is an error the user must fix."""
    raw = str(getattr(settings, "safety_checker", "auto") or "auto").strip().lower()
    value = _ALIASES.get(raw, raw)
    if value not in MODES:
        raise ToolError(f"setting safety_checker = {raw!r} is not one of {', '.join(MODES)}")
    return value


def checkpoint_ships_one(models: Any) -> bool:
    """True when the configured sd15 checkpoint has safety checker weights on this machine (or on the hub)."""
    from vchat.runtime import hub
    from vchat.runtime.catalog import COMPONENTS

    spec = COMPONENTS.get(CHECKER)
    if spec is None:
        return False
    source = hub.source_for(spec, getattr(models, "models", {}) or {})
    if not source.local and not hub.is_offline() and hub.root_of(source) is None:
        # Not downloaded yet but fetchable: the published SD 1.5 checkpoint ships a checker, so expect one.
        return True
    # The catalog marks the checker's files optional (many checkpoints have none): ask for them as required here.
    required = tuple(tuple(pattern.lstrip("?") for pattern in group) for group in spec.files)
    _found, missing = hub.find_files(replace(spec, files=required), source)
    return not missing


def enabled(ctx: ToolContext) -> bool:
    """Whether generated images go through the checker in this session."""
    value = mode(ctx.settings)
    if value == "off":
        return False
    ships = checkpoint_ships_one(ctx.models)
    if value == "on" and not ships:
        raise ModelLoadError(
            "safety_checker = on, but the configured sd15 checkpoint has no safety checker "
            "(no safety_checker/ folder); use a checkpoint that ships one or set safety_checker = off"
        )
    return ships


def check(ctx: ToolContext, image: Image.Image, tool: str) -> None:
    """Raise ToolError when the checker flags the image; does nothing when the checker is off."""
    if not enabled(ctx):
        return
    import numpy as np
    import torch

    with ctx.models.use(CHECKER, FEATURES, tool=tool) as parts:
        checker = parts[CHECKER]
        pixels = parts[FEATURES](images=image.convert("RGB"), return_tensors="pt").pixel_values
        pixels = pixels.to(parts.device_of(CHECKER), parts.dtype_of(CHECKER))
        batch = np.asarray(image.convert("RGB"), dtype=np.float32)[None] / 255.0
        with torch.no_grad():
            _, flagged = checker(images=batch, clip_input=pixels)
    if bool(flagged[0]):
        raise ToolError(BLOCKED)
