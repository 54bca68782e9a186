"""Model tiers: which set of default checkpoints (classic or current) the tools use on this machine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from vchat.config import Settings

Tier = Literal["classic", "current"]

GIB = 1 << 30
# Parameters and buffers of the full-size architectures, counted on the meta device (benchmarks/tier_models.py builds
# them; tests/test_tiers.py checks these figures against it). FLUX.2 [klein] 4B is the largest current model: its
# Qwen3-4B text encoder and its transformer take turns on the device (the encoder leaves once the prompt is encoded),
# so its peak is the larger one.
KLEIN_TEXT_ENCODER_PARAMS = 4_022_468_224
KLEIN_TRANSFORMER_PARAMS = 3_875_544_576
KLEIN_VAE_PARAMS = 84_046_372
PLANNER_2B_PARAMS = 2_213_241_760  # Qwen3.5-2B, the planner a GPU or MPS gets by default
PLANNER_2B_BYTES = 2 * PLANNER_2B_PARAMS  # in bf16
# Activations of one 1024 px klein step plus the CUDA context and allocator slack (a guess until measured on a GPU).
WORKING_MARGIN = int(1.5 * GIB)


def current_peak_bytes(with_planner: bool) -> int:
    """Device bytes the current tier needs at its peak (bf16 weights), with the 2B planner resident or not."""
    klein = 2 * max(KLEIN_TEXT_ENCODER_PARAMS, KLEIN_TRANSFORMER_PARAMS + KLEIN_VAE_PARAMS)
    return klein + WORKING_MARGIN + (PLANNER_2B_BYTES if with_planner else 0)


@dataclass(frozen=True)
class TierChoice:
    """The tier `auto` resolved to and the one-line reason the user is told."""

    tier: Tier
    reason: str

    @property
    def line(self) -> str:
        """`tier current: ... (set tier = "classic" or --tier classic to change)`."""
        other = "classic" if self.tier == "current" else "current"
        return f"model tier {self.tier}: {self.reason} (--tier {other} or VCHAT_TIER={other} to change)"


_CHOSEN: dict[tuple[Any, ...], TierChoice] = {}
_LISTENER: list[Callable[[str], None]] = []  # at most one: the front end running now


def active_tier(settings: Settings) -> Tier:
    """The tier the tools use: the setting when it names one; `auto` sizes the device (once per device setting)."""
    if settings.tier == "current":
        return "current"
    if settings.tier == "classic":
        return "classic"
    return resolve_auto(settings).tier


def on_first_choice(listener: Callable[[str], None] | None) -> None:
    """Say the one-line notice through `listener` when `auto` is first resolved (the command line prints it).

    One listener at a time (the front end running now); None stops the notices.
    """
    _LISTENER[:] = [listener] if listener is not None else []


def resolve_auto(settings: Settings) -> TierChoice:
    """`auto` resolved for this machine, remembered; the first resolution is announced to the listeners."""
    key = (settings.runtime.device, settings.runtime.vram_budget, planner_beside(settings))
    found = _CHOSEN.get(key)
    if found is None:
        found = _CHOSEN[key] = choose(settings)
        for listener in _LISTENER:
            listener(found.line)
    return found


def planner_beside(settings: Settings) -> bool:
    """Whether the built-in planner will share the device with the tools (no server, key or other backend named)."""
    llm = settings.llm.strip().lower()
    if llm == "local" or llm.startswith("local:"):
        return True
    return llm == "auto" and not settings.base_url and not settings.api_key


def choose(settings: Settings, memory: tuple[str, int, int] | None = None) -> TierChoice:
    """Pick the tier for a device: current where its budget holds the current tier's peak, else classic.

    `memory` is (device, free, total) for tests and benchmarks; by default the runtime's device is asked.
    """
    from vchat.errors import VchatError
    from vchat.runtime import memory as budgets

    if memory is None:
        try:
            from vchat.runtime import devices

            device = devices.resolve_device(settings.runtime.device)
            free, total = devices.device_memory(device)
        except (ImportError, VchatError) as exc:
            return TierChoice("classic", f"the device could not be sized ({exc})")
    else:
        device, free, total = memory
    if device == "cpu":
        return TierChoice("classic", "no GPU or Apple MPS device (FLUX.2 [klein] takes minutes per image on a CPU)")
    setting = budgets.parse_budget(settings.runtime.vram_budget)
    budget = budgets.auto_budget(free, total, True) if setting == budgets.AUTO else setting
    with_planner = planner_beside(settings)
    need = current_peak_bytes(with_planner)
    planner = " with the built-in planner beside it" if with_planner else ""
    if budget is None:
        return TierChoice("current", f"{device} has no memory budget set (unlimited)")
    have, want = budgets.format_size(int(budget)), budgets.format_size(need)
    if int(budget) >= need:
        return TierChoice("current", f"{device} budget {have} holds FLUX.2 [klein] ({want}{planner})")
    return TierChoice("classic", f"{device} budget {have} is under the {want} FLUX.2 [klein] needs{planner}")


def lineage(settings: Settings, model_key: str) -> dict[str, str]:
    """What an output's lineage records about its model: the id or folder it came from, and the tier."""
    from vchat.runtime.hub import model_ref

    return {"model": model_ref(model_key, settings.models), "tier": active_tier(settings)}
