"""remove_object and replace_object: find an object from text, mask it, and repaint it with SD inpainting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.errors import ToolError
from vchat.runtime.catalog import SD_SHARED
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.generation import common as sd
from vchat.tools.generation import klein
from vchat.tools.perception import masks

if TYPE_CHECKING:
    from vchat.store.refs import ImageRef

REMOVE_PROMPT = "background, empty scene, seamless, natural continuation of the surroundings"
# A mask over most of the image means the whole picture was repainted: the observation says so.
MOSTLY = 0.9


@dataclass
class _Edited:
    handle: str
    target: str
    summary: str
    out: ImageRef
    note: str | None


class _InpaintObject(Tool):
    """Shared steps: mask the object (empty mask: an honest error), inpaint, composite into the original."""

    components = (*masks.GROUNDED, *masks.CLIPSEG, "sd15_inpaint.unet", *SD_SHARED)
    current_components = (*masks.SAM3, *klein.COMPONENTS)

    def _edit(
        self, ctx: ToolContext, args: dict[str, Any], prompt: str, params: sd.Sampling, klein_prompt: str = ""
    ) -> _Edited:
        ref = args["image"]
        target = str(args["object"]).strip()
        if not target:
            raise ToolError("say which object to look for")
        use_klein = klein.current(ctx)
        source = klein.edit_input(ctx, ref) if use_klein else sd.edit_input(ctx, ref)
        # The mask is found at the working size: detection models downscale anyway, and dilating a 4000 px mask
        # would cost seconds; it is scaled up only for the final composite.
        with sd.unavailable_as_observation():
            if use_klein:
                found = klein.object_mask(ctx, source.work, target, self.name)
            else:
                found = masks.find_mask(ctx, source.work, target, self.name)
        if found.empty:
            extra = f" ({found.note})" if found.note else ""
            raise ToolError(f"no {target} found in {ref.handle}{extra}; the image was not changed")
        work_mask = found.image()
        mask = sd.resized(work_mask, source.size)
        if use_klein:
            prompt = klein_prompt or prompt
        done = klein.repaint(ctx, self.name, params, prompt, source.work, work_mask)
        result, sampling, described, made_by = done.result, done.sampling, done.described, done.made_by
        feather = max(1.0, max(source.size) * masks.DILATE_SHARE / 3)
        image = sd.composite(source.original, result.image, mask, feather)
        if source.alpha is not None:
            image.putalpha(source.alpha)
        record = {"object": target, "prompt": prompt, "mask": found.method, "mask_coverage": round(found.coverage, 4)}
        record.update(sampling)
        record.update({"image": ref.handle, **klein.lineage(ctx, made_by)})
        out = ctx.save_image(image, tool=self.name, params=record, parents=(ref.handle,), seed=params.seed)
        notes = [n for n in (found.note, result.degraded) if n]
        summary = f"{_coverage(found)}; {described}"
        return _Edited(ref.handle, target, summary, out, "; ".join(notes) or None)


def _coverage(found: masks.ObjectMask) -> str:
    share = f"mask from {found.method} covering {found.coverage:.0%} of the image"
    if found.coverage >= MOSTLY:
        share += ", so most of the picture was repainted"
    return share


class RemoveObject(_InpaintObject):
    """Erase an object and fill the hole with plausible background."""

    name = "remove_object"
    brief = "erase the named object and fill the gap"
    description = (
        "Remove an object from an image (found from its name, e.g. 'the car') and fill the gap with background. "
        "Returns the edited image at the input's size, or says that no such object was found."
    )
    inputs = (
        Field("image", "image", "the image to edit"),
        Field("object", "text", "the object to remove, e.g. 'car'"),
        sd.steps_field(30),
        sd.guidance_field(),
        sd.SEED,
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Mask, inpaint with a background prompt (the object as negative prompt), save."""
        params = sd.sampling(args, negative=str(args.get("object", "")))
        target = str(args.get("object", "")).strip()
        done = self._edit(ctx, args, REMOVE_PROMPT, params, klein_prompt=klein.remove_prompt(target))
        text = f"Removed the {done.target} from {done.handle} ({done.summary})."
        return ToolResult(text, [done.out], degraded=done.note)


class ReplaceObject(_InpaintObject):
    """Repaint an object as something else."""

    name = "replace_object"
    brief = "replace the named object with the replacement"
    description = (
        "Replace an object in an image with something else (e.g. the dog with a cat), found from its name. "
        "Returns the edited image at the input's size, or says that no such object was found."
    )
    inputs = (
        Field("image", "image", "the image to edit"),
        Field("object", "text", "the object to replace, e.g. 'dog'"),
        Field("replacement", "text", "what to put in its place, e.g. 'a black cat'"),
        sd.NEGATIVE,
        sd.steps_field(30),
        sd.guidance_field(),
        sd.SEED,
    )

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Mask, inpaint with the replacement as prompt, save."""
        replacement = str(args["replacement"]).strip()
        if not replacement:
            raise ToolError("say what to put in place of the object")
        params = sd.sampling(args)
        done = self._edit(ctx, args, replacement, params)
        text = f"Replaced the {done.target} in {done.handle} with {replacement!r} ({done.summary})."
        return ToolResult(text, [done.out], degraded=done.note)
