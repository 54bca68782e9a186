"""Model runtime: lazy, shared, memory-budgeted loading of the visual models (no torch import until first use).

For tool authors (the manager is `ctx.models`; declare the keys in `Tool.components`):

    # Any components, locked on their device for the block; inputs go to parts.device / parts.torch_dtype.
    with ctx.models.use("blip_caption", "blip_caption.processor", tool=self.name, progress=ctx.progress) as parts:
        inputs = parts["blip_caption.processor"](images=image, return_tensors="pt").to(parts.device, parts.torch_dtype)
        ids = parts["blip_caption"].generate(**inputs)

    # Same, but an out-of-memory error is caught, the budget lowered and fn retried once in a degraded mode.
    outcome = ctx.models.run(fn, "depth", "depth.processor", tool=self.name)   # fn(parts) -> value
    ToolResult(text, images, degraded=outcome.degraded)

    # Stable Diffusion: views over one shared text encoder, VAE and base UNet; each view has its own scheduler.
    pipe = ctx.models.sd_pipeline("controlnet", controlnet="controlnet_canny", tool=self.name)
    image = pipe(prompt=p, image=edges, num_inference_steps=20, generator=torch.Generator().manual_seed(s),
                 progress=ctx.progress).images[0]                      # also retried once on OOM
    ToolResult(text, images, degraded=pipe.degraded)
    # kinds: text2img, img2img, inpaint, pix2pix, controlnet; `with pipe.open() as p:` gives the raw pipeline.

Keys: `sd15.unet`, `sd15.text_encoder`, `sd15.vae`, `sd15.tokenizer`, `sd15.scheduler`, `sd15_inpaint.unet`,
`pix2pix.unet`, `controlnet_{canny,mlsd,hed,scribble,openpose,seg,depth,normal}`, `blip_caption`, `blip_vqa`,
`clipseg`, `depth`, `segmentation`, `grounding_dino`, `sam` (each with a `.processor`),
`annotators.{hed,mlsd,openpose}`.
Use a CPU `torch.Generator` so seeds give the same image on any device. Detectors (depth, segmentation,
annotators) default to CPU; `[tools.NAME] device/keep` override per tool. `manager.stats` counts hits, misses,
loads, moves, evictions and drops with bytes and milliseconds.
"""

from __future__ import annotations

from vchat.runtime.catalog import COMPONENTS, DEFAULT_MODELS
from vchat.runtime.manager import ModelManager, Outcome, Parts
from vchat.runtime.pipelines import SDPipelineView
from vchat.runtime.stats import Stats

__all__ = ["COMPONENTS", "DEFAULT_MODELS", "ModelManager", "Outcome", "Parts", "SDPipelineView", "Stats"]
