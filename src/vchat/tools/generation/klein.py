"""The current tier's generation tools on FLUX.2 [klein]: sizes, steps, lineage, and running one klein call.

The tools (generate, instruct_edit, remove/replace, extend) keep their inputs and observations in both tiers;
each asks `current(ctx)` and, when it is true, runs its klein path through `run_klein` with the helpers here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.errors import ToolError
from vchat.runtime.catalog import KLEIN, KLEIN_SHARED
from vchat.runtime.tiers import active_tier
from vchat.tools.base import Tool, ToolContext
from vchat.tools.generation import common as sd

if TYPE_CHECKING:
    from PIL import Image

    from vchat.store.images import ImageRef

MULTIPLE = 16  # klein's VAE cells (8 px) are packed 2x2 into tokens
MIN_SIDE = 64  # the klein pipelines refuse smaller images
MAX_REFERENCES = 3
COMPONENTS = KLEIN_SHARED


def current(ctx: ToolContext) -> bool:
    """True when this session's tools run the current tier (FLUX.2 [klein] for generation and edits)."""
    return active_tier(ctx.settings) == "current"


def components_in_tier(tool: type[Tool], tier: str) -> tuple[str, ...]:
    """The runtime components a tool locks in a tier: `current_components` where it switches to klein, else its own.

    For benchmarks and `vchat models` (what to size or fetch per tier); tools that do not switch use the same
    components in both tiers.
    """
    current = getattr(tool, "current_components", None)
    return tuple(current) if tier == "current" and current is not None else tuple(tool.components)


def lineage(ctx: ToolContext, key: str) -> dict[str, str]:
    """What every generated image records besides its inputs: the checkpoint that made it and the tier."""
    from vchat.runtime.tiers import lineage as tier_lineage

    return tier_lineage(ctx.settings, key)


def fit(width: int, height: int, cap: int) -> tuple[int, int]:
    """klein's working size for an input: aspect kept, multiples of 16, long side at most `cap`, sides >= 64."""
    if width < 1 or height < 1:
        raise ToolError(f"image size {width}x{height} is empty")
    scale = min(1.0, cap / max(width, height))
    if min(width, height) * scale < MIN_SIDE:
        scale = MIN_SIDE / min(width, height)
    w = max(MIN_SIDE, round(width * scale / MULTIPLE) * MULTIPLE)
    h = max(MIN_SIDE, round(height * scale / MULTIPLE) * MULTIPLE)
    if max(w, h) > max(cap, MIN_SIDE) + MULTIPLE:
        raise ToolError(
            f"image {width}x{height} is too elongated: its short side would be under {MIN_SIDE} pixels with the "
            f"long side capped at {cap}; crop it first"
        )
    return w, h


def edit_input(ctx: ToolContext, ref: ImageRef) -> sd.EditInput:
    """An input fitted for klein (aspect kept, multiples of 16, long side capped by `sd_max_side`)."""
    rgb, alpha = sd.split_alpha(ctx.load_image(ref))
    return sd.EditInput(rgb, alpha, sd.resized(rgb, fit(*rgb.size, cap=sd.max_side(ctx.settings))))


def references(ctx: ToolContext, refs: list[ImageRef]) -> list[Image.Image]:
    """Reference images, RGB and fitted like the edited one (each adds tokens, so each is capped too)."""
    if len(refs) > MAX_REFERENCES:
        raise ToolError(f"at most {MAX_REFERENCES} reference images, not {len(refs)}")
    cap = sd.max_side(ctx.settings)
    out = []
    for ref in refs:
        image = ctx.load_image(ref).convert("RGB")
        out.append(sd.resized(image, fit(*image.size, cap=cap)))
    return out


def steps(args: Mapping[str, Any], field_default: int, klein_default: int) -> int:
    """The steps to run: the tool's own default means "the checkpoint's" (4 for the distilled klein)."""
    asked = int(args.get("steps", field_default))
    return klein_default if asked == field_default else asked


@dataclass
class KleinRun:
    """One klein call's image (at the working size), how it ran, and the steps it took."""

    image: Image.Image
    degraded: str | None
    steps: int
    distilled: bool


def run_klein(
    ctx: ToolContext,
    tool: str,
    kind: str,
    params: sd.Sampling,
    *,
    field_steps: int,
    prompt: str,
    **kwargs: Any,
) -> KleinRun:
    """Run one klein view ("edit" or "inpaint") with per-step progress, the safety check and honest failures."""
    from vchat.runtime.klein import klein_pipeline
    from vchat.tools.generation import safety

    ctx.check_cancelled()
    with sd.unavailable_as_observation():
        view = klein_pipeline(ctx.models, kind, tool=tool)
        count = steps({"steps": params.steps}, field_steps, view.default_steps)
        out = view(
            prompt=prompt,
            negative=params.negative_prompt,
            guidance=params.guidance,
            progress=ctx.progress,
            num_inference_steps=count,
            generator=sd.generator(params.seed),
            output_type="pil",
            **kwargs,
        )
        image = out.images[0]
        safety.check(ctx, image, tool)
    return KleinRun(image, view.degraded, count, view.distilled)


@dataclass
class Repainted:
    """A masked repaint in either tier: the run, its sampling record, its observation text and the model key."""

    result: sd.SDRun
    sampling: dict[str, Any]
    described: str
    made_by: str


def repaint(
    ctx: ToolContext, tool: str, params: sd.Sampling, prompt: str, image: Image.Image, mask: Image.Image
) -> Repainted:
    """Repaint the masked part of `image`: klein in the current tier, SD inpainting in the classic one.

    The caller composites the result back, so pixels outside the mask stay the input's in both tiers.
    """
    if current(ctx):
        ran = run_klein(
            ctx, tool, "inpaint", params, field_steps=30, prompt=prompt, image=image, mask_image=mask, strength=1.0
        )
        return Repainted(sd.SDRun(ran.image, ran.degraded), record(params, ran), describe(params, ran), KLEIN)
    width, height = image.size
    result = sd.run_sd(
        ctx,
        tool,
        "inpaint",
        params,
        prompt=prompt,
        image=image,
        mask_image=mask,
        width=width,
        height=height,
        strength=1.0,
    )
    return Repainted(result, params.record(), sd.describe_seed(params), "sd15_inpaint")


def record(params: sd.Sampling, run: KleinRun) -> dict[str, Any]:
    """Sampling params as klein used them (guidance only where the checkpoint uses it)."""
    out: dict[str, Any] = {"steps": run.steps}
    if not run.distilled:
        out["guidance"] = params.guidance
        if params.negative_prompt:
            out["negative_prompt"] = params.negative_prompt
    return out


def describe(params: sd.Sampling, run: KleinRun) -> str:
    """`FLUX.2 [klein], seed 42, 4 steps` for observations."""
    from vchat.runtime.klein import KLEIN_NAME

    text = f"{KLEIN_NAME}, seed {params.seed}, {run.steps} steps"
    return text if run.distilled else f"{text}, guidance {params.guidance:g}"


__all__ = [
    "COMPONENTS",
    "KLEIN",
    "components_in_tier",
    "current",
    "edit_input",
    "fit",
    "lineage",
    "references",
    "repaint",
    "run_klein",
]


def object_mask(ctx: ToolContext, image: Image.Image, text: str, tool: str) -> Any:
    """The mask the current tier's remove/replace repaint: the one call site of the text-to-mask step.

    `masks.find_mask` picks the finder by tier (Grounding DINO + SAM, else CLIPSeg; SAM 3 in the current tier
    where the masks module has it); another finder for klein's edits goes here.
    """
    from vchat.tools.perception import masks

    return masks.find_mask(ctx, image, text, tool)


def remove_prompt(target: str) -> str:
    """klein reads instructions through Qwen3: say what the repainted area shows, naming what must not be there."""
    return f"the same scene with no {target}: only the background and surroundings, seamlessly continued"
