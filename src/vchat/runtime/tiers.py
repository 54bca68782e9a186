"""Model tiers: which set of default checkpoints (classic or current) the tools use on this machine."""

from __future__ import annotations

from typing import Literal

from vchat.config import Settings

Tier = Literal["classic", "current"]


def active_tier(settings: Settings) -> Tier:
    """The tier the tools use: the setting when it names one; `auto` resolves to classic until sized by device."""
    if settings.tier == "current":
        return "current"
    return "classic"
