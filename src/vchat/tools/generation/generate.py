"""generate_image: a new picture from a text prompt (Stable Diffusion 1.5 text-to-image)."""

from __future__ import annotations

from typing import Any

from vchat.errors import ToolError
from vchat.runtime.catalog import SD_SHARED
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.generation import common as sd
from vchat.tools.generation import klein


class GenerateImage(Tool):
    """Text-to-image on the shared SD 1.5 base; default 512x512."""

    name = "generate_image"
    brief = "new image from text alone; not for changing an existing image"
    description = (
        "Create a brand-new image from a text description (Stable Diffusion). Use only when the user wants a new "
        "picture, not to change an existing one. Returns the new image."
    )
    inputs = (
        Field("prompt", "text", "what the image shows, in English"),
        Field("width", "int", "width in pixels", default=512, minimum=sd.MIN_SIDE, maximum=sd.GEN_MAX_SIDE),
        Field("height", "int", "height in pixels", default=512, minimum=sd.MIN_SIDE, maximum=sd.GEN_MAX_SIDE),
        sd.NEGATIVE,
        sd.steps_field(30),
        sd.guidance_field(),
        sd.SEED,
    )
    components = ("sd15.unet", *SD_SHARED)
    current_components = klein.COMPONENTS

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Generate, check, save with prompt, size and seed recorded."""
        prompt = str(args["prompt"]).strip()
        if not prompt:
            raise ToolError("the prompt is empty; say what the image should show")
        asked = (int(args["width"]), int(args["height"]))
        cap = sd.max_side(ctx.settings)
        width, height = sd.generation_size(*asked, cap)
        params = sd.sampling(args)
        if klein.current(ctx):
            return self._klein(ctx, prompt, asked, cap, params)
        result = sd.run_sd(ctx, self.name, "text2img", params, prompt=prompt, width=width, height=height)
        out = ctx.save_image(
            result.image,
            tool=self.name,
            params={
                "prompt": prompt,
                "width": width,
                "height": height,
                **params.record(),
                **klein.lineage(ctx, "sd15"),
            },
            parents=(),
            seed=params.seed,
        )
        text = f"Generated a {width}x{height} image of {prompt!r} ({sd.describe_seed(params)})."
        if max(asked) > cap:
            text += f" {asked[0]}x{asked[1]} was scaled down to fit the long-side cap of {cap} (setting sd_max_side)."
        return ToolResult(text, [out], degraded=result.degraded)

    def _klein(
        self, ctx: ToolContext, prompt: str, asked: tuple[int, int], cap: int, params: sd.Sampling
    ) -> ToolResult:
        """The current tier: FLUX.2 [klein] text-to-image at the asked size in multiples of 16."""
        width, height = klein.fit(*asked, cap=cap)
        result = klein.run_klein(
            ctx, self.name, "edit", params, field_steps=30, prompt=prompt, width=width, height=height
        )
        record = {"prompt": prompt, "width": width, "height": height, **klein.record(params, result)}
        out = ctx.save_image(
            result.image,
            tool=self.name,
            params={**record, **klein.lineage(ctx, klein.KLEIN)},
            parents=(),
            seed=params.seed,
        )
        text = f"Generated a {width}x{height} image of {prompt!r} ({klein.describe(params, result)})."
        if max(asked) > cap:
            text += f" {asked[0]}x{asked[1]} was scaled down to fit the long-side cap of {cap} (setting sd_max_side)."
        return ToolResult(text, [out], degraded=result.degraded)
