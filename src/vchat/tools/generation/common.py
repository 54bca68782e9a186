"""Shared plumbing of the Stable Diffusion tools: sizes, seeds, parameters, running a view, honest failures.

Settings read here (attributes of `Settings`, with these defaults when absent):
- `sd_max_side` (768): the long side an input or output is processed at, at most; larger inputs are scaled down
  for Stable Diffusion (edits are scaled back to the input size afterwards).
- `sd_upscale_small` (False): process inputs whose long side is under 512 at 512 (SD 1.5 works poorly below
  that); by default a small input stays small.
- `safety_checker` ("auto"): see `vchat.tools.generation.safety`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.errors import ModelLoadError, ToolError, ToolUnavailable
from vchat.tools.base import Field, ToolContext

if TYPE_CHECKING:
    from PIL import Image

MULTIPLE = 8  # the VAE works on 8x8 pixel cells: SD sizes must be multiples of 8
MIN_SIDE = 64  # below this the UNet's latent is under 8 cells and the result is noise
DEFAULT_MAX_SIDE = 768
SMALL_SIDE = 512  # SD 1.5's training size: `sd_upscale_small` lifts smaller inputs to it
SEED_MAX = 2**32 - 1
GEN_MAX_SIDE = 2048  # the most a size field accepts; the `sd_max_side` setting usually caps lower


# --- parameters -------------------------------------------------------------------------------------------


def steps_field(default: int) -> Field:
    """Number of denoising steps."""
    return Field("steps", "int", "denoising steps", default=default, minimum=1, maximum=150)


def guidance_field(default: float = 7.5) -> Field:
    """Classifier-free guidance scale."""
    return Field("guidance", "float", "how strictly to follow the text", default=default, minimum=0.0, maximum=30.0)


# No bounds in the field: a 10-digit maximum prints as 4.29497e+09 in the prompt; `sampling` checks the range.
SEED = Field("seed", "int", "-1: random (the seed used is reported)", default=-1)
NEGATIVE = Field("negative_prompt", "text", "what to avoid", default="")


@dataclass(frozen=True)
class Sampling:
    """The sampling parameters every SD tool takes, validated."""

    steps: int
    guidance: float
    seed: int
    negative_prompt: str

    def record(self) -> dict[str, Any]:
        """Params for the PNG chunk and transcript (the seed is recorded separately by save_image)."""
        out: dict[str, Any] = {"steps": self.steps, "guidance": self.guidance}
        if self.negative_prompt:
            out["negative_prompt"] = self.negative_prompt
        return out


def sampling(args: Mapping[str, Any], *, negative: str = "") -> Sampling:
    """Read steps, guidance, seed and negative prompt from bound args; a seed of -1 (or none) picks one at random."""
    try:
        steps = int(args.get("steps", 30))
        guidance = float(args.get("guidance", 7.5))
        seed = int(args.get("seed", -1) if args.get("seed") is not None else -1)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"bad sampling parameter: {exc}") from None
    if not 1 <= steps <= 150:
        raise ToolError(f"steps must be 1..150, not {steps}")
    if not 0.0 <= guidance <= 30.0:
        raise ToolError(f"guidance must be 0..30, not {guidance:g}")
    if seed < -1 or seed > SEED_MAX:
        raise ToolError(f"seed must be -1 (random) or 0..{SEED_MAX}, not {seed}")
    if seed == -1:
        seed = secrets.randbelow(SEED_MAX + 1)
    text = str(args.get("negative_prompt") or negative).strip()
    return Sampling(steps, guidance, seed, text)


def generator(seed: int) -> Any:
    """A CPU generator: the same seed gives the same image on CPU, CUDA or MPS."""
    import torch

    return torch.Generator("cpu").manual_seed(seed)


# --- sizes ------------------------------------------------------------------------------------------------


def max_side(settings: Any) -> int:
    """The long-side cap from the settings, validated."""
    value = int(getattr(settings, "sd_max_side", DEFAULT_MAX_SIDE) or DEFAULT_MAX_SIDE)
    if value < MIN_SIDE:
        raise ToolError(f"setting sd_max_side = {value} is below the minimum of {MIN_SIDE}")
    return value - value % MULTIPLE


def fit_size(width: int, height: int, *, cap: int, upscale_small: bool = False) -> tuple[int, int]:
    """The size to run SD at for an input: aspect kept, multiples of 8, long side at most `cap`.

    Small inputs are not enlarged unless `upscale_small`; a side under 64 is enlarged (SD cannot work below it).
    """
    if width < 1 or height < 1:
        raise ToolError(f"image size {width}x{height} is empty")
    long_side, short_side = max(width, height), min(width, height)
    scale = 1.0
    if long_side > cap:
        scale = cap / long_side
    elif upscale_small and long_side < SMALL_SIDE:
        scale = min(SMALL_SIDE, cap) / long_side
    if short_side * scale < MIN_SIDE:
        scale = MIN_SIDE / short_side
        if long_side * scale > cap + MULTIPLE:
            raise ToolError(
                f"image {width}x{height} is too elongated: its short side would be under {MIN_SIDE} pixels "
                f"with the long side capped at {cap}; crop it first"
            )
    w = max(MIN_SIDE, _round8(width * scale))
    h = max(MIN_SIDE, _round8(height * scale))
    return min(w, max(cap, MIN_SIDE)), min(h, max(cap, MIN_SIDE))


def _round8(value: float) -> int:
    return round(value / MULTIPLE) * MULTIPLE


def generation_size(width: int, height: int, cap: int) -> tuple[int, int]:
    """A requested output size in multiples of 8, scaled down (aspect kept) when it is over the long-side cap."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ToolError(f"size {width}x{height} is too small: each side must be at least {MIN_SIDE}")
    if max(width, height) > cap:
        return fit_size(width, height, cap=cap)
    return _round8(width), _round8(height)


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(RGB image, alpha or None): SD works on RGB; edits give the alpha back afterwards."""
    if image.mode == "RGBA":
        return image.convert("RGB"), image.getchannel("A")
    return image.convert("RGB"), None


def resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image at `size` (a no-op when it already is), with a high-quality filter."""
    from PIL import Image as PILImage

    return image if image.size == size else image.resize(size, PILImage.Resampling.LANCZOS)


@dataclass
class EditInput:
    """An input image prepared for SD: the original (RGB), its alpha, and a copy at the size SD runs at."""

    original: Image.Image
    alpha: Image.Image | None
    work: Image.Image

    @property
    def size(self) -> tuple[int, int]:
        """The input's own size, which edits return."""
        return self.original.size

    def finish(self, image: Image.Image) -> Image.Image:
        """An SD result back at the input's size, with the input's transparency restored."""
        out = resized(image.convert("RGB"), self.size)
        if self.alpha is not None:
            out.putalpha(self.alpha)
        return out


def composite(original: Image.Image, generated: Image.Image, mask: Image.Image, feather: float) -> Image.Image:
    """Generated pixels where `mask` is white, the original's elsewhere, with a soft seam `feather` pixels wide.

    Pixels away from the mask stay exactly the original's: SD's VAE round trip would otherwise blur the whole
    image for an edit of one object.
    """
    from PIL import Image as PILImage
    from PIL import ImageFilter

    soft = mask.convert("L").filter(ImageFilter.GaussianBlur(feather)) if feather > 0 else mask.convert("L")
    return PILImage.composite(resized(generated.convert("RGB"), original.size), original.convert("RGB"), soft)


def edit_input(ctx: ToolContext, ref: Any) -> EditInput:
    """Load an input image and fit it for SD (aspect kept, multiples of 8, long side capped)."""
    rgb, alpha = split_alpha(ctx.load_image(ref))
    size = fit_size(*rgb.size, cap=max_side(ctx.settings), upscale_small=upscale_small(ctx.settings))
    return EditInput(rgb, alpha, resized(rgb, size))


def upscale_small(settings: Any) -> bool:
    """Whether small inputs are processed at 512 (setting `sd_upscale_small`)."""
    return bool(getattr(settings, "sd_upscale_small", False))


# --- running ----------------------------------------------------------------------------------------------


@contextmanager
def unavailable_as_observation() -> Iterator[None]:
    """Turn 'cannot run' failures (weights missing offline, out of memory) into ToolUnavailable: no substitutes."""
    try:
        yield
    except ToolUnavailable:
        raise
    except ModelLoadError as exc:
        raise ToolUnavailable(str(exc)) from exc


@dataclass
class SDRun:
    """What one SD call produced: the image (at the size SD ran at) and, if it ran degraded, why."""

    image: Image.Image
    degraded: str | None


def run_sd(
    ctx: ToolContext,
    tool: str,
    kind: str,
    params: Sampling,
    *,
    controlnet: str | None = None,
    **kwargs: Any,
) -> SDRun:
    """Run one SD view with the tool's sampling parameters, per-step progress and the safety check.

    Cancellation: `ctx.progress` raises `Cancelled` in the step callback, so a Ctrl-C stops within one step and
    nothing is saved (saving happens only after this returns).
    """
    from vchat.tools.generation import safety

    ctx.check_cancelled()
    with unavailable_as_observation():
        view = ctx.models.sd_pipeline(kind, controlnet=controlnet, tool=tool)
        out = view(
            progress=ctx.progress,
            num_inference_steps=params.steps,
            guidance_scale=params.guidance,
            negative_prompt=params.negative_prompt or None,
            generator=generator(params.seed),
            output_type="pil",
            **kwargs,
        )
        image = out.images[0]
        safety.check(ctx, image, tool)
    return SDRun(image, view.degraded)


def describe_seed(params: Sampling) -> str:
    """`seed 42, 30 steps` for observations, so the model can tell the user how to reproduce."""
    return f"seed {params.seed}, {params.steps} steps, guidance {params.guidance:g}"
