"""FLUX.2 [klein] on shared components: the prompt is encoded first, the text encoder leaves, then the transformer runs.

The current tier's generation tools share one Qwen3 text encoder, one transformer and one VAE, loaded by the
ModelManager like every other component. A call runs in two phases so that the two ~8 GB halves (bf16) never
need to sit on the device together: `encode` locks only the text encoder (and tokenizer), then sends it back to
CPU memory unless the budget holds the next phase beside it; the denoising phase locks the transformer, VAE and
scheduler and gets the embeddings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.runtime import hub
from vchat.runtime.catalog import (
    KLEIN,
    KLEIN_ID,
    KLEIN_SCHEDULER,
    KLEIN_TEXT_ENCODER,
    KLEIN_TOKENIZER,
    KLEIN_TRANSFORMER,
    KLEIN_VAE,
    component,
)

if TYPE_CHECKING:
    from vchat.runtime.manager import ModelManager, Parts

__all__ = ["KLEIN", "KLEIN_ID", "KLEIN_NAME", "KleinView", "klein_pipeline"]

KLEIN_NAME = "FLUX.2 [klein] 4B"
TEXT_ENCODER, TRANSFORMER, VAE = KLEIN_TEXT_ENCODER, KLEIN_TRANSFORMER, KLEIN_VAE
TOKENIZER, SCHEDULER_KEY = KLEIN_TOKENIZER, KLEIN_SCHEDULER
TEXT_PHASE = (TEXT_ENCODER, TOKENIZER)
DENOISE_PHASE = (TRANSFORMER, VAE, SCHEDULER_KEY)
# The distilled checkpoint is trained for 4 steps without guidance; the undistilled "base" variants for ~50 with it.
DISTILLED_STEPS = 4
BASE_STEPS = 50
# Hidden layers of Qwen3 that klein stacks into its prompt embedding (the pipeline's default).
TEXT_LAYERS = (9, 18, 27)
VIEWS = {"edit": "Flux2KleinPipeline", "inpaint": "Flux2KleinInpaintPipeline"}


def is_distilled(manager: ModelManager) -> bool:
    """Whether the configured klein checkpoint is the step-distilled one (its model_index.json says; default yes)."""
    root = hub.root_of(hub.source_for(component(TRANSFORMER), manager.models))
    index = root / "model_index.json" if root is not None else None
    if index is None or not index.is_file():
        return True
    try:
        return bool(json.loads(index.read_text(encoding="utf-8")).get("is_distilled", True))
    except (OSError, ValueError):
        return True


@dataclass
class Prompt:
    """Encoded prompts (CPU tensors) and the degraded note from the text phase."""

    embeds: Any
    negative: Any | None
    degraded: str | None


def _build(kind: str, parts: Parts | None, distilled: bool, text: tuple[Any, Any] | None = None) -> Any:
    import diffusers

    modules: dict[str, Any] = {"scheduler": None, "vae": None, "transformer": None}
    if parts is not None:
        # Schedulers keep per-run state: every pipeline gets its own copy of the shared one.
        base = parts[SCHEDULER_KEY]
        modules = {
            "scheduler": type(base).from_config(base.config),
            "vae": parts[VAE],
            "transformer": parts[TRANSFORMER],
        }
    encoder, tokenizer = text if text is not None else (None, None)
    pipeline = getattr(diffusers, VIEWS[kind])(
        **modules, text_encoder=encoder, tokenizer=tokenizer, is_distilled=distilled
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


class KleinView:
    """One klein pipeline kind ("edit": text-to-image and reference edits; "inpaint": masked edits).

    `view(prompt=..., negative=..., progress=cb, **pipeline_kwargs)` encodes, moves the encoder off, denoises and
    returns the pipeline's output; `view.degraded` then says how it ran when a phase ran degraded.
    """

    def __init__(self, manager: ModelManager, kind: str, *, tool: str | None = None):
        if kind not in VIEWS:
            raise ValueError(f"unknown klein view {kind!r}; one of {', '.join(VIEWS)}")
        self.manager = manager
        self.kind = kind
        self.tool = tool
        self.degraded: str | None = None
        self.distilled = is_distilled(manager)

    @property
    def default_steps(self) -> int:
        """The step count the configured checkpoint was made for."""
        return DISTILLED_STEPS if self.distilled else BASE_STEPS

    def encode(
        self, prompt: str, negative: str = "", progress: Callable[[int, int, str], None] | None = None
    ) -> Prompt:
        """Prompt embeddings on CPU (and the negative's, when the checkpoint uses guidance); the encoder then leaves."""

        def run(parts: Parts) -> tuple[Any, Any | None]:
            import torch

            pipeline = _build(self.kind, None, self.distilled, (parts[TEXT_ENCODER], parts[TOKENIZER]))
            device = parts.device_of(TEXT_ENCODER)
            with torch.no_grad():
                embeds, _ids = pipeline.encode_prompt(prompt, device=device, text_encoder_out_layers=TEXT_LAYERS)
                negative_embeds = None
                if not self.distilled:
                    negative_embeds, _ = pipeline.encode_prompt(
                        negative, device=device, text_encoder_out_layers=TEXT_LAYERS
                    )
            return embeds.cpu(), negative_embeds.cpu() if negative_embeds is not None else None

        outcome = self.manager.run(run, *TEXT_PHASE, tool=self.tool, progress=progress)
        # The encoder is not needed again until the next prompt: it makes way unless both phases fit at once.
        self.manager.send_to_cpu(TEXT_ENCODER, unless_room_for=DENOISE_PHASE)
        return Prompt(outcome.value[0], outcome.value[1], outcome.degraded)

    def __call__(
        self,
        *,
        prompt: str,
        negative: str = "",
        guidance: float = 1.0,
        progress: Callable[[int, int, str], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Encode, then denoise with the pipeline's own call (`image`, `mask_image`, sizes… pass through)."""
        encoded = self.encode(prompt, negative, progress)

        def run(parts: Parts) -> Any:
            import torch

            pipeline = self.manager.bound_view(
                ("klein", self.kind, self.distilled, DENOISE_PHASE),
                parts,
                lambda: _build(self.kind, parts, self.distilled),
            )
            device, dtype = parts.device_of(TRANSFORMER), parts.dtype_of(TRANSFORMER)
            call = dict(kwargs)
            call["prompt_embeds"] = encoded.embeds.to(device, dtype)
            if encoded.negative is not None:
                call["negative_prompt_embeds"] = encoded.negative.to(device, dtype)
            # Distilled checkpoints ignore guidance (and the pipeline warns when it is over 1).
            call["guidance_scale"] = guidance if not self.distilled else 1.0
            if progress is not None and "callback_on_step_end" not in call:
                call["callback_on_step_end"] = _step_callback(progress)
            with torch.no_grad():
                return pipeline(prompt=None, **call)

        outcome = self.manager.run(run, *DENOISE_PHASE, tool=self.tool, progress=progress)
        notes = [n for n in (encoded.degraded, outcome.degraded) if n]
        self.degraded = "; ".join(dict.fromkeys(notes)) or None
        return outcome.value


def _step_callback(progress: Callable[[int, int, str], None]) -> Callable[..., dict[str, Any]]:
    def on_step_end(pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        progress(step + 1, int(getattr(pipeline, "_num_timesteps", 0) or step + 1), "denoising")
        return callback_kwargs

    return on_step_end


def klein_pipeline(manager: ModelManager, kind: str, *, tool: str | None = None) -> KleinView:
    """A klein view ("edit" or "inpaint") over the manager's shared klein components."""
    return KleinView(manager, kind, tool=tool)
