"""instruct_edit: change an image as an instruction says (InstructPix2Pix), keeping its size."""

from __future__ import annotations

from typing import Any

from vchat.errors import ToolError
from vchat.runtime.catalog import SD_SHARED
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.generation import common as sd
from vchat.tools.generation import klein


class InstructEdit(Tool):
    """Whole-image edits described as an instruction: InstructPix2Pix (classic) or FLUX.2 [klein] (current)."""

    name = "instruct_edit"
    brief = "edit a whole image by an instruction ('make it winter'): style, weather, colour, mood"
    description = (
        "Edit an image by an instruction, e.g. 'make it look like winter' (InstructPix2Pix; in the current tier "
        "FLUX.2 [klein], which also uses up to 3 reference images). Returns the edited image at the input's size."
    )
    inputs = (
        Field("image", "image", "the image to edit"),
        Field("instruction", "text", "what to change, as an instruction"),
        # Other images the instruction draws on ("put the dog from img2 on the sofa"); current tier only.
        Field(
            "references",
            "images",
            "other images the instruction uses (current tier)",
            default=[],
            maximum=klein.MAX_REFERENCES,
        ),
        Field(
            "image_guidance",
            "float",
            "how closely to keep the original (higher: fewer changes)",
            default=1.5,
            minimum=0.0,
            maximum=10.0,
        ),
        sd.NEGATIVE,
        sd.steps_field(20),
        sd.guidance_field(),
        sd.SEED,
    )
    components = ("pix2pix.unet", *SD_SHARED)
    current_components = klein.COMPONENTS

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Edit at a fitted size, then return the result at the input's size."""
        ref = args["image"]
        instruction = str(args["instruction"]).strip()
        if not instruction:
            raise ToolError("the instruction is empty; say what to change")
        image_guidance = float(args.get("image_guidance", 1.5))
        if not 0.0 <= image_guidance <= 10.0:
            raise ToolError(f"image_guidance must be 0..10, not {image_guidance:g}")
        params = sd.sampling(args)
        refs = list(args.get("references") or ())
        if klein.current(ctx):
            return self._klein(ctx, ref, refs, instruction, params)
        if refs:
            # InstructPix2Pix edits one image: dropping the references silently would claim an edit it did not do.
            raise ToolError(
                "instruct_edit cannot use reference images in the classic tier (InstructPix2Pix sees one image); "
                "leave references out, or use tier = current (FLUX.2 [klein])"
            )
        source = sd.edit_input(ctx, ref)
        result = sd.run_sd(
            ctx,
            self.name,
            "pix2pix",
            params,
            prompt=instruction,
            image=source.work,
            image_guidance_scale=image_guidance,
        )
        out = ctx.save_image(
            source.finish(result.image),
            tool=self.name,
            params={
                "instruction": instruction,
                "image_guidance": image_guidance,
                "work_size": list(source.work.size),
                **params.record(),
                "image": ref.handle,
                **klein.lineage(ctx, "pix2pix"),
            },
            parents=(ref.handle,),
            seed=params.seed,
        )
        text = f"Edited {ref.handle} as instructed ({instruction!r}; {sd.describe_seed(params)})."
        return ToolResult(text, [out], degraded=result.degraded)

    def _klein(self, ctx: ToolContext, ref: Any, refs: list[Any], instruction: str, params: sd.Sampling) -> ToolResult:
        """The current tier: FLUX.2 [klein] edits the image, seeing the references as further input images."""
        source = klein.edit_input(ctx, ref)
        extra = klein.references(ctx, refs)
        width, height = source.work.size
        result = klein.run_klein(
            ctx,
            self.name,
            "edit",
            params,
            field_steps=20,
            prompt=instruction,
            image=[source.work, *extra],
            width=width,
            height=height,
        )
        handles = [r.handle for r in refs]
        record = {
            "instruction": instruction,
            "image": ref.handle,
            "references": handles,
            "work_size": [width, height],
            **klein.record(params, result),
            **klein.lineage(ctx, klein.KLEIN),
        }
        out = ctx.save_image(
            source.finish(result.image),
            tool=self.name,
            params=record,
            parents=(ref.handle, *handles),
            seed=params.seed,
        )
        using = f" using {', '.join(handles)}" if handles else ""
        text = f"Edited {ref.handle}{using} as instructed ({instruction!r}; {klein.describe(params, result)})."
        return ToolResult(text, [out], degraded=result.degraded)
