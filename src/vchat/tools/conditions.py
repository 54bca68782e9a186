"""Condition maps for the ControlNets: made by the matching detector from a photo, or recognised as a map already."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.errors import ToolError
from vchat.tools.base import ToolContext

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from vchat.images import ImageRef

# What the user's input is: decided from lineage and the pixels ("auto"), or said explicitly.
INPUT_KINDS = ("auto", "photo", "map")


@dataclass(frozen=True)
class Condition:
    """One ControlNet condition: its name, checkpoint key, detector components and the tools that make its maps."""

    name: str  # canny, lines, hed, ...
    controlnet: str  # runtime key of the ControlNet
    what: str  # "edge map", how observations name the map
    detector: tuple[str, ...]  # runtime components the detector needs (empty: model-free)
    made_by: tuple[str, ...]  # tools whose outputs already are this kind of map
    family: str  # edges | pose | depth | normal | segmentation: which pixel test recognises a map


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("canny", "controlnet_canny", "Canny edge map", (), ("canny_edges",), "edges"),
        Condition("lines", "controlnet_mlsd", "straight-line map", ("annotators.mlsd",), ("detect_lines",), "edges"),
        Condition("hed", "controlnet_hed", "soft edge map", ("annotators.hed",), ("detect_hed",), "edges"),
        Condition("scribble", "controlnet_scribble", "scribble", ("annotators.hed",), ("detect_scribble",), "edges"),
        Condition("pose", "controlnet_openpose", "pose skeleton", ("annotators.openpose",), ("detect_pose",), "pose"),
        Condition(
            "segmentation",
            "controlnet_seg",
            "segmentation map",
            ("segmentation", "segmentation.processor"),
            ("segment_semantic",),
            "segmentation",
        ),
        Condition("depth", "controlnet_depth", "depth map", ("depth", "depth.processor"), ("estimate_depth",), "depth"),
        Condition(
            "normal", "controlnet_normal", "normal map", ("depth", "depth.processor"), ("estimate_normals",), "normal"
        ),
    )
}


@dataclass
class ConditionMap:
    """The condition image at the size SD runs at, whether it was detected, and a degraded note."""

    image: Image.Image
    detected: bool
    degraded: str | None = None


def prepare(
    ctx: ToolContext,
    condition: Condition,
    ref: ImageRef,
    image: Image.Image,
    size: tuple[int, int],
    kind: str,
    tool: str,
) -> ConditionMap:
    """The condition map for `image` at `size`: used as is when it already is one, else made by the detector."""
    if kind not in INPUT_KINDS:
        raise ToolError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, not {kind!r}")
    rgb = image.convert("RGB")
    as_map = kind == "map" or (kind == "auto" and is_map(condition, ref, rgb))
    if as_map:
        return ConditionMap(_as_map(condition, rgb, size), detected=False)
    ctx.progress(0, 1, f"detecting {condition.what}")
    made, degraded = DETECTORS[condition.name](ctx, rgb, size, tool)
    ctx.progress(1, 1, f"detecting {condition.what}")
    if _blank(made):
        raise ToolError(
            f"{_nothing_found(condition)} in {ref.handle}, so there is nothing for the ControlNet to follow"
        )
    return ConditionMap(made, detected=True, degraded=degraded)


def _nothing_found(condition: Condition) -> str:
    return {
        "canny": "no edges found",
        "lines": "no straight lines found",
        "hed": "no edges found",
        "scribble": "no strokes found",
        "pose": "no person found",
    }.get(condition.name, f"no {condition.what} could be made")


# --- recognising maps ---------------------------------------------------------------------------------------


def is_map(condition: Condition, ref: ImageRef, image: Image.Image) -> bool:
    """Whether the input already is this condition's map: from its lineage, else from its pixels."""
    if ref.tool in condition.made_by:
        return True
    return bool(_PIXEL_TESTS[condition.family](_sample(image)))


def _sample(image: Image.Image) -> np.ndarray:
    """The pixels the tests look at: at most 128 on the long side (cheap), NEAREST so flat colours stay exact."""
    import numpy as np
    from PIL import Image as PILImage

    scale = 128 / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, PILImage.Resampling.NEAREST)
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _stats(arr: np.ndarray) -> tuple[np.ndarray, bool, float, float]:
    """(luma, is grayscale, dark share, light share) of an RGB array; grayness is judged on the non-dark pixels."""
    import numpy as np

    spread = arr.max(axis=-1) - arr.min(axis=-1)
    luma = arr.mean(axis=-1)
    lit = spread[luma >= 40]
    gray = bool(lit.size == 0 or np.percentile(lit, 95) <= 12)
    return luma, gray, float((luma < 40).mean()), float((luma > 215).mean())


def _looks_like_edges(arr: np.ndarray) -> bool:
    # Light lines on a dark ground (detector output), or dark lines on white paper (a drawing, inverted later).
    _luma, gray, dark, light = _stats(arr)
    return gray and (dark >= 0.6 or (light >= 0.6 and dark + light >= 0.9))


def _looks_like_pose(arr: np.ndarray) -> bool:
    # Coloured limbs on black.
    _luma, gray, dark, _light = _stats(arr)
    return not gray and dark >= 0.7


def _looks_like_depth(arr: np.ndarray) -> bool:
    # Grey and smooth: depth maps have no texture; grey photos (and edge maps) do.
    import numpy as np

    luma, gray, dark, _light = _stats(arr)
    if not gray or dark >= 0.6:
        return False
    roughness = np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean()
    return bool(roughness < 6.0)


def _looks_like_normal(arr: np.ndarray) -> bool:
    # Surface normals point at the camera: blue dominates everywhere and R, G stay near the middle.
    import numpy as np

    _luma, gray, _dark, _light = _stats(arr)
    blue = arr[..., 2]
    return not gray and float((blue >= 120).mean()) > 0.97 and float(np.median(blue)) > 170


def _looks_like_segmentation(arr: np.ndarray) -> bool:
    # Flat colours: mostly ADE20K palette entries, or a handful of colours covering nearly everything.
    import numpy as np

    from vchat.tools.ade20k import ADE20K_PALETTE

    flat = arr.reshape(-1, 3).astype(np.int32)
    codes = flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2]
    palette = np.array([r << 16 | g << 8 | b for r, g, b in ADE20K_PALETTE])
    if float(np.isin(codes, palette).mean()) >= 0.9 and not _looks_like_edges(arr):
        return True
    _values, counts = np.unique(codes, return_counts=True)
    top = np.sort(counts)[::-1][:32].sum() / codes.size
    _luma, gray, _dark, _light = _stats(arr)
    return bool(top >= 0.99 and len(counts) >= 2 and not gray)


_PIXEL_TESTS: dict[str, Callable[[np.ndarray], bool]] = {
    "edges": _looks_like_edges,
    "pose": _looks_like_pose,
    "depth": _looks_like_depth,
    "normal": _looks_like_normal,
    "segmentation": _looks_like_segmentation,
}


def _as_map(condition: Condition, image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A given map at the working size; drawings on white paper are inverted to the light-on-dark the nets expect."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    out = image
    if condition.family == "edges":
        _luma, _gray, dark, light = _stats(_sample(image))
        if light > dark:
            out = ImageOps.invert(image)
    # Flat-colour maps must keep their exact colours; smooth maps may be filtered.
    flat = condition.family in ("segmentation", "pose", "edges")
    resample = PILImage.Resampling.NEAREST if flat else PILImage.Resampling.BILINEAR
    return out if out.size == size else out.resize(size, resample)


def _blank(image: Image.Image) -> bool:
    import numpy as np

    return bool(np.asarray(image).max() < 16)


# --- detectors: photo -> map at the working size ------------------------------------------------------------

Detected = tuple["Image.Image", "str | None"]


def _detect_canny(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> Detected:
    import cv2
    import numpy as np
    from PIL import Image as PILImage

    gray = np.asarray(image.resize(size, PILImage.Resampling.LANCZOS).convert("L"))
    # ControlNet's own annotator thresholds for the canny model.
    edges = cv2.Canny(gray, 100, 200)
    return PILImage.fromarray(edges, "L").convert("RGB"), None


def _resolution(size: tuple[int, int]) -> int:
    """The detectors' working resolution (short side): 512 as trained, less for small inputs."""
    return max(64, min(512, min(size)))


def _annotator(key: str, **options: Any) -> Callable[[ToolContext, Image.Image, tuple[int, int], str], Detected]:
    def detect(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> Detected:
        import numpy as np
        from PIL import Image as PILImage

        resolution = _resolution(size)

        def run(parts: Any) -> Any:
            arr = np.asarray(image, dtype=np.uint8)
            return parts[key](arr, detect_resolution=resolution, image_resolution=resolution, **options)

        outcome = ctx.models.run(run, key, tool=tool)
        made = outcome.value if isinstance(outcome.value, PILImage.Image) else PILImage.fromarray(outcome.value)
        return made.convert("RGB").resize(size, PILImage.Resampling.BILINEAR), outcome.degraded

    return detect


def _detect_pose(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> Detected:
    import numpy as np
    from PIL import Image as PILImage

    resolution = _resolution(size)
    scale = resolution / min(image.size)
    small = image.resize((round(image.width * scale), round(image.height * scale)), PILImage.Resampling.LANCZOS)

    def run(parts: Any) -> Any:
        from controlnet_aux.open_pose import draw_poses

        poses = parts["annotators.openpose"].detect_poses(np.asarray(small, dtype=np.uint8))
        if not poses:
            return None
        return draw_poses(poses, size[1], size[0], draw_body=True, draw_hand=False, draw_face=False)

    outcome = ctx.models.run(run, "annotators.openpose", tool=tool)
    if outcome.value is None:
        return PILImage.new("RGB", size), outcome.degraded
    return PILImage.fromarray(np.asarray(outcome.value, dtype=np.uint8)).convert("RGB"), outcome.degraded


def _predict_depth(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> tuple[Any, str | None]:
    """Relative inverse depth (near = large) at `size`, as a float32 array."""
    import numpy as np
    import torch

    def run(parts: Any) -> Any:
        inputs = parts["depth.processor"](images=image, return_tensors="pt")
        pixels = inputs["pixel_values"].to(parts.device_of("depth"), parts.dtype_of("depth"))
        with torch.no_grad():
            predicted = parts["depth"](pixel_values=pixels).predicted_depth
        predicted = predicted.float().reshape(1, 1, *predicted.shape[-2:])
        resized = torch.nn.functional.interpolate(predicted, size=(size[1], size[0]), mode="bicubic")
        return resized[0, 0].cpu().numpy()

    outcome = ctx.models.run(run, "depth", "depth.processor", tool=tool)
    return np.asarray(outcome.value, dtype=np.float32), outcome.degraded


def _normalised(values: np.ndarray) -> np.ndarray:
    import numpy as np

    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def _detect_depth(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> Detected:
    import numpy as np
    from PIL import Image as PILImage

    depth, degraded = _predict_depth(ctx, image, size, tool)
    grey = (_normalised(depth) * 255.0).clip(0, 255).astype(np.uint8)
    return PILImage.fromarray(grey, "L").convert("RGB"), degraded


def _detect_normal(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> Detected:
    # The ControlNet normal annotator's recipe (as Visual ChatGPT used it): Sobel gradients of MiDaS depth,
    # background (far, under 0.4 of the range) flat, z = 2 pi, normalised and mapped to 0..255.
    import cv2
    import numpy as np
    from PIL import Image as PILImage

    depth, degraded = _predict_depth(ctx, image, size, tool)
    relative = _normalised(depth)
    x = cv2.Sobel(depth, cv2.CV_32F, 1, 0, ksize=3)
    y = cv2.Sobel(depth, cv2.CV_32F, 0, 1, ksize=3)
    x[relative < 0.4] = 0
    y[relative < 0.4] = 0
    z = np.ones_like(x) * np.pi * 2.0
    normal = np.stack([x, y, z], axis=2)
    normal /= np.sum(normal**2.0, axis=2, keepdims=True) ** 0.5
    rgb = (normal * 127.5 + 127.5).clip(0, 255).astype(np.uint8)
    return PILImage.fromarray(rgb, "RGB"), degraded


def _detect_segmentation(ctx: ToolContext, image: Image.Image, size: tuple[int, int], tool: str) -> Detected:
    import numpy as np
    import torch
    from PIL import Image as PILImage

    from vchat.tools.ade20k import ADE20K_PALETTE

    def run(parts: Any) -> Any:
        processor = parts["segmentation.processor"]
        inputs = processor(images=image, return_tensors="pt")
        pixels = inputs["pixel_values"].to(parts.device_of("segmentation"), parts.dtype_of("segmentation"))
        with torch.no_grad():
            logits = parts["segmentation"](pixel_values=pixels).logits
        logits = torch.nn.functional.interpolate(logits.float(), size=(size[1], size[0]), mode="bilinear")
        return logits.argmax(dim=1)[0].cpu().numpy()

    outcome = ctx.models.run(run, "segmentation", "segmentation.processor", tool=tool)
    palette = np.array(ADE20K_PALETTE, dtype=np.uint8)
    labels = np.asarray(outcome.value) % len(palette)
    return PILImage.fromarray(palette[labels], "RGB"), outcome.degraded


DETECTORS: dict[str, Callable[[ToolContext, Image.Image, tuple[int, int], str], Detected]] = {
    "canny": _detect_canny,
    "lines": _annotator("annotators.mlsd", thr_v=0.1, thr_d=0.1),
    "hed": _annotator("annotators.hed"),
    "scribble": _annotator("annotators.hed", scribble=True),
    "pose": _detect_pose,
    "segmentation": _detect_segmentation,
    "depth": _detect_depth,
    "normal": _detect_normal,
}
