"""Condition maps for the ControlNets: made by the matching detector from a photo, or recognised as a map already.

The detectors are the perception tools' own map functions (`canny.canny_map`, `lines.line_map`, ...), so a
generate_from_<condition> tool sees the same map its perception tool would save.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vchat.errors import ToolError
from vchat.tools.base import ToolContext
from vchat.tools.maps import canny, hed, lines, pose
from vchat.tools.perception import depth, semantic
from vchat.tools.util import DetectedMap

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from vchat.store.refs import ImageRef

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
        Condition(
            "depth",
            "controlnet_depth",
            "depth map",
            (*depth.KEYS, *depth.CURRENT_KEYS),  # DPT in the classic tier, Depth Anything V2 in the current one
            ("estimate_depth",),
            "depth",
        ),
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
    made = DETECTORS[condition.name](ctx, rgb, size, tool)
    ctx.progress(1, 1, f"detecting {condition.what}")
    if _blank(made.image):
        raise ToolError(
            f"{_nothing_found(condition)} in {ref.handle}, so there is nothing for the ControlNet to follow"
        )
    return ConditionMap(made.image, detected=True, degraded=made.degraded)


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

    from vchat.tools.perception.ade20k import ADE20K_PALETTE

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
# One implementation per condition: the perception tools' own map functions (canny_edges, detect_lines, ...).

Detector = Callable[[ToolContext, "Image.Image", tuple[int, int], str], DetectedMap]

DETECTORS: dict[str, Detector] = {
    "canny": lambda ctx, image, size, tool: canny.canny_map(image, size),
    "lines": lines.line_map,
    "hed": hed.hed_map,
    "scribble": lambda ctx, image, size, tool: hed.hed_map(ctx, image, size, tool, scribble=True),
    "pose": pose.pose_map,
    "segmentation": semantic.segmentation_map,
    "depth": depth.depth_map,
    "normal": depth.normals_map,
}
