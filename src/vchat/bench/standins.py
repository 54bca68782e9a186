"""Fast stand-ins for the tools: same names, descriptions and inputs, known observations, no weights.

A stand-in subclasses the real tool class, so the system prompt and input binding are exactly
the chat's. Its `run` reports the task's known facts (captions, answers, boxes), makes images
of the size and mode the real tool would, and can be told to fail. Model-free tools (crop,
resize, canny…) run for real: they are fast already.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from vchat.bench.capabilities import capability_of
from vchat.bench.tasks import Box, Scene, Task
from vchat.errors import ToolError
from vchat.store.images import ImageRef
from vchat.tools.base import Tool, ToolContext, ToolResult

if TYPE_CHECKING:
    from vchat.session import Session

# What a told-to-fail stand-in raises: the kind of fault users meet with the real tools.
FAILURE = "out of GPU memory while loading its model (needs 2.1 GiB, 0.6 GiB free); the image was not changed"
# Modes of the real tools' outputs, by capability (RGB when not listed).
_MODES = {
    "map:canny": "L",
    "map:lines": "L",
    "map:hed": "L",
    "map:scribble": "L",
    "map:depth": "L",
    "remove_background": "RGBA",
}
_MAP_WORDS = {
    "map:canny": "Canny edges of {h} (thresholds 100/200, 7.9% edge pixels).",
    "map:lines": "23 straight lines found in {h}.",
    "map:hed": "HED soft edges of {h}.",
    "map:scribble": "Scribble of {h}.",
    "map:pose": "Pose of 1 person found in {h}.",
    "map:depth": "Depth map of {h} (near is white, far is black).",
    "map:normal": "Normal map of {h} (from its estimated depth).",
    "map:segmentation": "Segmentation of {h} into 6 classes; largest: sky 31%, building 24%, road 18%.",
}


@dataclass
class Facts:
    """What the stand-ins know about one image: its caption, objects and answers."""

    caption: str
    size: tuple[int, int]
    objects: dict[str, tuple[Box, ...]] = field(default_factory=dict)
    scene: Scene | None = None

    def answer(self, question: str) -> str:
        """The question-answering stand-in's answer."""
        if self.scene is not None:
            return self.scene.answer(question)
        return "yes" if any(word in question.lower() for word in self.caption.lower().split()) else "no"


def _colour(text: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(text.encode()).digest()
    return digest[0], digest[1], digest[2]


def _colour_name(scene: Scene) -> str:
    return hashlib.sha256(f"{scene.caption}|{scene.size}|{scene.mode}".encode()).hexdigest()[:12]


def picture(size: tuple[int, int], mode: str, seed: str) -> Image.Image:
    """A flat image of the given size and mode, coloured from a seed string (cheap to encode)."""
    colour = _colour(seed)
    if mode == "L":
        return Image.new("L", size, colour[0])
    if mode == "RGBA":
        return Image.new("RGBA", size, (*colour, 255))
    return Image.new(mode, size, colour)


def _phrases(text: str) -> list[str]:
    parts = re.split(r"[,;.\n]+|\band\b", text.lower())
    return [" ".join(p.split()) for p in parts if p.strip()]


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _matches(label: str, phrase: str) -> bool:
    words = {_singular(w) for w in re.findall(r"[a-z]+", phrase)}
    return _singular(label) in words or label in phrase


class World:
    """One task's facts and the session the stand-ins run in; fails what the task says, when measuring."""

    def __init__(self, task: Task, failing: bool = True) -> None:
        self.task = task
        self.measuring = False
        self.failing = failing
        self.session: Session | None = None
        self.facts: dict[str, Facts] = {}

    def write_scenes(self, folder: Path) -> list[tuple[Scene, Path]]:
        """The task's pictures as files to attach (shared by the tasks of a run: written once)."""
        written = []
        for scene in self.task.scenes:
            path = folder / _colour_name(scene) / scene.file
            written.append((scene, path))
            if path.is_file():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
            picture(scene.size, scene.mode, scene.caption).save(path, format=fmt)
        return written

    def attached(self, ref: ImageRef, scene: Scene) -> None:
        """Remember what an attached picture shows."""
        self.facts[ref.handle] = Facts(scene.caption, scene.size, dict(scene.objects), scene)
        if scene.listed_caption:
            ref.caption = scene.caption

    def facts_of(self, ref: ImageRef) -> Facts:
        """Facts of an image; unknown ones (e.g. made by a real tool) get a neutral description."""
        return self.facts.get(ref.handle) or Facts(f"an image ({ref.width}x{ref.height})", (ref.width, ref.height))

    def should_fail(self, capability: str) -> bool:
        """True when the task asks this capability to fail now."""
        return self.failing and self.measuring and capability in self.task.fail


def _first_image(tool: type[Tool], args: Mapping[str, Any]) -> ImageRef | None:
    for spec in tool.inputs:
        if spec.kind == "image" and isinstance(args.get(spec.name), ImageRef):
            found: ImageRef = args[spec.name]
            return found
    return None


def _text(args: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = args.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


class _StandIn:
    """Mixed in before a real tool class: replaces `run`, keeps everything the model sees."""

    world: World
    name: str
    inputs: tuple[Any, ...]
    components: tuple[str, ...]

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        tool: Any = type(self)
        if getattr(tool, "members", None) and hasattr(tool, "validate"):
            args = tool.validate(dict(args))  # a family: the chosen member's inputs, as the real one checks
        capability = capability_of(self.name, args)
        if self.world.should_fail(capability):
            raise ToolError(FAILURE)
        real: Any = super()
        if not self.components:  # model-free: the real thing is fast
            return real.run(ctx, **args)
        ref = _first_image(tool, args)
        return self._fake(ctx, capability, ref, args)

    def _save(
        self, ctx: ToolContext, facts: Facts, ref: ImageRef | None, capability: str, args: Mapping[str, Any], **kw: Any
    ) -> ImageRef:
        size = kw.get("size") or (facts.size if ref is None else (ref.width, ref.height))
        mode = kw.get("mode") or _MODES.get(capability, "RGB")
        params = {k: v for k, v in args.items() if not isinstance(v, ImageRef)}
        image = picture(size, mode, f"{facts.caption}|{capability}|{sorted(params.items())!r}")
        parents = () if ref is None else (ref.handle,)
        out = ctx.save_image(image, tool=self.name, params=params, parents=parents, seed=kw.get("seed"))
        self.world.facts[out.handle] = replace(facts, size=size, objects=dict(kw.get("objects", facts.objects)))
        return out

    def _fake(self, ctx: ToolContext, capability: str, ref: ImageRef | None, args: Mapping[str, Any]) -> ToolResult:
        facts = self.world.facts_of(ref) if ref is not None else Facts("", (512, 512))
        h = ref.handle if ref is not None else ""
        if capability == "caption":
            return ToolResult(f"Caption of {h}: {facts.caption}.")
        if capability == "vqa":
            return ToolResult(f"Answer about {h}: {facts.answer(_text(args, 'question'))}")
        if capability == "generate":
            prompt = _text(args, "prompt")
            size = (int(args.get("width") or 512), int(args.get("height") or 512))
            made = Facts(f"a picture of {prompt}", size)
            out = self._save(ctx, made, None, capability, args, size=size, seed=1234)
            return ToolResult(f"Generated a {size[0]}x{size[1]} image of {prompt!r} (seed 1234).", [out])
        if capability in ("detect", "segment_object", "remove_object", "replace_object"):
            return self._objects(ctx, capability, ref, facts, args)
        if capability.startswith("map:"):
            out = self._save(ctx, facts, ref, capability, args, objects={})
            return ToolResult(_MAP_WORDS[capability].format(h=h), [out])
        if capability.startswith("from_map:"):
            prompt = _text(args, "prompt")
            made = Facts(f"a picture of {prompt}", facts.size)
            out = self._save(ctx, made, ref, capability, args, seed=1234)
            kind = capability.split(":", 1)[1]
            return ToolResult(f"Generated {prompt!r} following the {kind} map (detected from {h}; seed 1234).", [out])
        if capability == "edit":
            instruction = _text(args, "instruction")
            edited = replace(facts, caption=f"{facts.caption}, {instruction}")
            out = self._save(ctx, edited, ref, capability, args, seed=1234)
            return ToolResult(f"Edited {h} as instructed ({instruction!r}; seed 1234).", [out])
        if capability == "extend":
            return self._extend(ctx, ref, facts, args)
        if capability == "remove_background":
            out = self._save(ctx, facts, ref, capability, args)
            return ToolResult(f"Background removed from {h}: the subject kept covers 38% of the image.", [out])
        if capability == "segment_anything":
            out = self._save(ctx, facts, ref, capability, args)
            return ToolResult(f"14 regions found in {h} (the largest covers 31% of it).", [out])
        raise ToolError(f"the bench has no stand-in for {self.name}")

    def _objects(
        self, ctx: ToolContext, capability: str, ref: ImageRef | None, facts: Facts, args: Mapping[str, Any]
    ) -> ToolResult:
        h = ref.handle if ref is not None else ""
        asked = _text(args, "text", "object")
        found = [
            (label, box)
            for label, boxes in facts.objects.items()
            for box in boxes
            if any(_matches(label, phrase) for phrase in _phrases(asked))
        ]
        if not found:
            tail = "; the image was not changed" if capability in ("remove_object", "replace_object") else ""
            raise ToolError(f"no {asked} found in {h}{tail}")
        labels = ", ".join(dict.fromkeys(label for label, _ in found))
        if capability == "detect":
            listed = "; ".join(
                f"{label} 0.{87 - i} at [{', '.join(map(str, box))}]" for i, (label, box) in enumerate(found)
            )
            out = self._save(ctx, facts, ref, capability, args)
            count = "1 object" if len(found) == 1 else f"{len(found)} objects"
            return ToolResult(f"Found {count} in {h}: {listed}.", [out])
        if capability == "segment_object":
            style = str(args.get("output") or "mask")
            mode = {"mask": "L", "cutout": "RGBA"}.get(style, "RGB")
            out = self._save(ctx, facts, ref, capability, args, mode=mode)
            return ToolResult(
                f"{style.capitalize()} of {labels} in {h}: {len(found)} object(s), 21% of the image.", [out]
            )
        left = {k: v for k, v in facts.objects.items() if k not in dict(found)}
        if capability == "remove_object":
            out = self._save(
                ctx,
                replace(facts, caption=f"{facts.caption}, without the {labels}"),
                ref,
                capability,
                args,
                objects=left,
                seed=1234,
            )
            return ToolResult(f"Removed the {asked} from {h} (mask covering 17% of the image; seed 1234).", [out])
        replacement = _text(args, "replacement")
        out = self._save(
            ctx,
            replace(facts, caption=f"{facts.caption}, the {labels} now {replacement}"),
            ref,
            capability,
            args,
            objects={**left, replacement: tuple(b for _, b in found)},
            seed=1234,
        )
        return ToolResult(f"Replaced the {asked} in {h} with {replacement!r} (seed 1234).", [out])

    def _extend(self, ctx: ToolContext, ref: ImageRef | None, facts: Facts, args: Mapping[str, Any]) -> ToolResult:
        assert ref is not None
        factor = float(args.get("factor") or 2.0)
        direction = str(args.get("direction") or "all")
        w, h = ref.width, ref.height
        wide = direction in ("all", "horizontal", "left", "right")
        tall = direction in ("all", "vertical", "up", "down")
        size = (round(w * factor) if wide else w, round(h * factor) if tall else h)
        out = self._save(ctx, facts, ref, "extend", args, size=size, seed=1234)
        return ToolResult(f"Extended {ref.handle} from {w}x{h} to {size[0]}x{size[1]} ({direction}; seed 1234).", [out])


def standin_tools(world: World, classes: Sequence[type[Tool]]) -> list[Tool]:
    """One stand-in per tool class, bound to the task's world."""
    tools: list[Tool] = []
    for cls in classes:
        standin = type(f"StandIn{cls.__name__}", (_StandIn, cls), {"world": world, "__module__": __name__})
        tools.append(standin())
    return tools


class FailingTool:
    """Wraps a real tool so the task's failures still happen under --real-tools."""

    def __init__(self, tool: Tool, world: World) -> None:
        self.name = tool.name
        self.original = tool.run  # taken before the instance's `run` is replaced by this wrapper's
        self.world = world

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Fail when told to, else run the real tool."""
        if self.world.should_fail(capability_of(self.name, args)):
            raise ToolError(FAILURE)
        return self.original(ctx, **args)


def real_tools(world: World, classes: Sequence[type[Tool]]) -> list[Tool]:
    """The real tools, with the task's failures injected (their classes stay the real ones)."""
    tools: list[Tool] = []
    for cls in classes:
        tool = cls()
        wrapper = FailingTool(tool, world)
        tool.run = wrapper.run  # type: ignore[method-assign]
        tools.append(tool)
    return tools
