"""Stable Diffusion views: cheap diffusers pipelines over shared components, each with its own scheduler."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from vchat.runtime.catalog import CONTROLNETS, SD_SHARED

if TYPE_CHECKING:
    from vchat.runtime.parts import ComponentHost, Parts

# kind -> (diffusers pipeline class, its UNet component, default scheduler; None keeps the checkpoint's own)
VIEWS: dict[str, tuple[str, str, str | None]] = {
    "text2img": ("StableDiffusionPipeline", "sd15.unet", None),
    "img2img": ("StableDiffusionImg2ImgPipeline", "sd15.unet", None),
    "inpaint": ("StableDiffusionInpaintPipeline", "sd15_inpaint.unet", None),
    "pix2pix": ("StableDiffusionInstructPix2PixPipeline", "pix2pix.unet", "euler_a"),
    "controlnet": ("StableDiffusionControlNetPipeline", "sd15.unet", "unipc"),
}

SCHEDULERS = {
    "pndm": "PNDMScheduler",
    "ddim": "DDIMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
    "dpm": "DPMSolverMultistepScheduler",
}


def view_components(kind: str, controlnet: str | None = None) -> tuple[str, ...]:
    """The component keys a view needs, weighted ones first."""
    if kind not in VIEWS:
        raise ValueError(f"unknown Stable Diffusion view {kind!r}; one of {', '.join(VIEWS)}")
    if (kind == "controlnet") != (controlnet is not None):
        raise ValueError("a controlnet view needs controlnet=KEY, and only a controlnet view takes one")
    if controlnet is not None and controlnet not in CONTROLNETS:
        raise ValueError(f"unknown ControlNet {controlnet!r}; one of {', '.join(CONTROLNETS)}")
    unet = VIEWS[kind][1]
    return (unet, *((controlnet,) if controlnet else ()), *SD_SHARED)


def build_pipeline(kind: str, parts: Parts, controlnet: str | None, scheduler: str | None) -> Any:
    """A diffusers pipeline object over the given components (no weights copied) with a fresh scheduler."""
    import diffusers

    class_name, unet_key, default_scheduler = VIEWS[kind]
    base = parts["sd15.scheduler"]
    name = scheduler or default_scheduler
    if name is not None and name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; one of {', '.join(SCHEDULERS)}")
    # Schedulers keep per-run state (timesteps, step index): never share one between views.
    scheduler_class = getattr(diffusers, SCHEDULERS[name]) if name else type(base)
    modules: dict[str, Any] = {
        "vae": parts["sd15.vae"],
        "text_encoder": parts["sd15.text_encoder"],
        "tokenizer": parts["sd15.tokenizer"],
        "unet": parts[unet_key],
        "scheduler": scheduler_class.from_config(base.config),
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }
    if controlnet is not None:
        modules["controlnet"] = parts[controlnet]
    pipeline = getattr(diffusers, class_name)(**modules)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


class SDPipelineView:
    """A handle on one SD view; holds no weights, so the manager stays free to evict them between calls.

    `view(prompt=..., num_inference_steps=20, progress=cb)` runs the pipeline with its components locked, retrying
    once degraded after an out-of-memory error (`view.degraded` then says how it ran). `with view.open() as pipe:`
    gives the bound diffusers pipeline itself.
    """

    def __init__(
        self,
        manager: ComponentHost,
        kind: str,
        *,
        controlnet: str | None = None,
        tool: str | None = None,
        scheduler: str | None = None,
    ):
        self.manager = manager
        self.kind = kind
        self.controlnet = controlnet
        self.tool = tool
        self.scheduler = scheduler
        self.components = view_components(kind, controlnet)
        self.degraded: str | None = None

    def bind(self, parts: Parts) -> Any:
        """The cached pipeline over exactly these component objects."""
        cache_key = (self.kind, self.controlnet, self.scheduler, self.components)
        return self.manager.bound_view(
            cache_key, parts, lambda: build_pipeline(self.kind, parts, self.controlnet, self.scheduler)
        )

    @contextmanager
    def open(self, progress: Callable[[int, int, str], None] | None = None) -> Iterator[Any]:
        """The ready diffusers pipeline, its components locked on their device until the block ends."""
        with self.manager.use(*self.components, tool=self.tool, progress=progress) as parts:
            self.degraded = parts.degraded
            yield self.bind(parts)

    def __call__(self, *, progress: Callable[[int, int, str], None] | None = None, **kwargs: Any) -> Any:
        """Run the pipeline (`progress(done, total, label)` per denoising step and while loading)."""

        def run(parts: Parts) -> Any:
            pipeline = self.bind(parts)
            if progress is not None and "callback_on_step_end" not in kwargs:
                kwargs["callback_on_step_end"] = _step_callback(progress, kwargs.get("num_inference_steps"))
            return pipeline(**kwargs)

        outcome = self.manager.run(run, *self.components, tool=self.tool, progress=progress)
        self.degraded = outcome.degraded
        return outcome.value


def _step_callback(progress: Callable[[int, int, str], None], asked: Any = None) -> Callable[..., dict[str, Any]]:
    """Progress per denoising step, counted in the steps the user asked for.

    PNDM (Stable Diffusion 1.5's scheduler) runs one step more than it was asked for (31 for 30):
    the bar counts to the steps asked, the extra step holding it at the end.
    """

    def on_step_end(pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        total = int(getattr(pipeline, "_num_timesteps", 0) or step + 1)
        if isinstance(asked, int) and asked > 0:
            total = min(total, asked)
        progress(min(step + 1, total), total, "denoising")
        return callback_kwargs

    return on_step_end
