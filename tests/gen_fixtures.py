"""Helpers for the generation tool tests: one CPU ModelManager per module over the zoo, sessions wired to it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vchat.config import Settings
from vchat.session import Observers

SIZE = 64
STEPS = 2
# Fast settings every SD tool call in the tests uses: 2 steps, a fixed seed.
FAST = {"steps": STEPS, "seed": 7}


def module_models() -> Iterator[Any]:
    """A ModelManager over the zoo's fake HF cache (offline), torch on one thread, for one test module.

    CPU in fp32 unless VCHAT_TEST_DEVICE names another device (`cuda`: the same tests in fp16 on a GPU).
    One thread: on this 2-core machine shared with other jobs, torch's thread pool oversubscribes and a tiny
    64x64 run takes seconds instead of tens of milliseconds.
    """
    import pytest
    import torch
    from tests.zoo import zoo_root

    from vchat.runtime import ModelManager

    root = zoo_root()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setenv("HF_HUB_CACHE", str(root / "hub"))
        patch.setenv("HF_HUB_OFFLINE", "1")
        # numpy 2.4 + torch: diffusers' EulerAncestral/UniPC schedulers warn about `__array__ copy`; harmless.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        device = os.environ.get("VCHAT_TEST_DEVICE", "cpu")
        dtype = "float32" if device == "cpu" else "auto"
        manager = ModelManager(device=device, dtype=dtype, vram_budget=None, ram_budget=None)
        try:
            yield manager
        finally:
            manager.clear()
            torch.set_num_threads(threads)


def gen_session(tmp_path: Path, models: Any, replies: list[str] | None = None, **settings: Any) -> Any:
    """A session writing under tmp_path/out, on the shared manager, optionally with a scripted model."""
    from vchat.llm.scripted import ScriptedLLM
    from vchat.session import Session
    from vchat.tools.registry import all_tools

    config = Settings(out_dir=tmp_path / "out")
    for key, value in settings.items():
        setattr(config, key, value)  # sd_max_side, safety_checker…: settings the SD tools read if present
    llm = ScriptedLLM(replies) if replies is not None else None
    return Session(config, all_tools(), llm, models=models)


def photo_session(tmp_path: Path, models: Any) -> Any:
    """A session with the 100x75 test photo attached as img1."""
    from tests.helpers import write_photo

    session = gen_session(tmp_path, models)
    session.attach(write_photo(tmp_path, width=100, height=75))
    return session


def pixels(ref: Any) -> np.ndarray:
    """The pixels of an output image."""
    with Image.open(ref.path) as img:
        return np.asarray(img.convert("RGB"))


def files_in(folder: Path) -> list[str]:
    """Names of the files in a session folder (PNGs and temp files), sorted."""
    # `.lock` is the session's lock file (held while it is open), not an output.
    return sorted(p.name for p in folder.iterdir() if p.name != ".lock") if folder.exists() else []


def cancel_after_first_step(session: Any) -> tuple[list[tuple[int, int, str]], Observers]:
    """Observers that cancel the session (as Ctrl-C does) once the first denoising step has been reported."""
    seen: list[tuple[int, int, str]] = []

    def hook(done: int, total: int, label: str) -> None:
        seen.append((done, total, label))
        if label == "denoising" and done >= 1:
            session.cancel_event.set()

    return seen, Observers(progress=hook)


def edge_map(size: int = SIZE) -> Image.Image:
    """White outlines on black: what canny_edges or a scribble looks like."""
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[size // 4, size // 4 : 3 * size // 4] = 255
    arr[3 * size // 4, size // 4 : 3 * size // 4] = 255
    arr[size // 4 : 3 * size // 4, size // 4] = 255
    arr[size // 4 : 3 * size // 4, 3 * size // 4] = 255
    return Image.fromarray(arr, "RGB")


def pose_map(size: int = SIZE) -> Image.Image:
    """Coloured limbs on black, like an OpenPose skeleton."""
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[10:50, 31:33] = (255, 0, 0)
    arr[20:22, 15:48] = (0, 255, 85)
    arr[48:60, 20:22] = (0, 85, 255)
    arr[48:60, 42:44] = (255, 170, 0)
    return Image.fromarray(arr, "RGB")


def depth_map(size: int = SIZE) -> Image.Image:
    """A smooth grey ramp: near at the bottom."""
    ramp = np.linspace(30, 230, size, dtype=np.float32)[:, None].repeat(size, axis=1)
    return Image.fromarray(ramp.astype(np.uint8), "L").convert("RGB")


def normal_map(size: int = SIZE) -> Image.Image:
    """Mostly flat (128, 128, 255) with a bump."""
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[:] = (128, 128, 255)
    arr[20:40, 20:40] = (170, 110, 220)
    return Image.fromarray(arr, "RGB")


def segmentation_map(size: int = SIZE) -> Image.Image:
    """Three ADE20K regions: sky, building, road."""
    from vchat.tools.perception.ade20k import ADE20K_PALETTE

    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[: size // 3] = ADE20K_PALETTE[2]
    arr[size // 3 : 2 * size // 3] = ADE20K_PALETTE[1]
    arr[2 * size // 3 :] = ADE20K_PALETTE[6]
    return Image.fromarray(arr, "RGB")


MAPS: dict[str, Callable[[], Image.Image]] = {
    "canny": edge_map,
    "lines": edge_map,
    "hed": edge_map,
    "scribble": edge_map,
    "pose": pose_map,
    "segmentation": segmentation_map,
    "depth": depth_map,
    "normal": normal_map,
}


class FakePose:
    """Stands in for controlnet_aux's OpenposeDetector (the zoo has no OpenPose weights: ~550 MB at real size)."""

    def __init__(self, people: int = 1) -> None:
        self.people = people
        self.calls = 0

    def detect_poses(self, image: np.ndarray) -> list[Any]:
        from controlnet_aux.open_pose import BodyResult, Keypoint, PoseResult

        self.calls += 1
        points = [Keypoint(0.5, 0.2), Keypoint(0.5, 0.4), Keypoint(0.35, 0.4), Keypoint(0.3, 0.6)]
        points += [None] * 14
        body = BodyResult(keypoints=points, total_score=4.0, total_parts=4)
        return [PoseResult(body, None, None, None) for _ in range(self.people)]

    def to(self, device: Any) -> FakePose:
        return self


def install_fake_pose(manager: Any, detector: FakePose) -> None:
    """Make `annotators.openpose` resolve to `detector` in this manager (loaded, on CPU)."""
    entry = manager._entry("annotators.openpose")
    entry.obj = detector
    entry.where = "cpu"
    entry.dtype = "float32"
    entry.nbytes = 0


def controlnet_out_convs(controlnet: Any) -> list[Any]:
    """A ControlNet's zero-initialised convolutions: the condition embedding's output, and those into the UNet."""
    return [
        controlnet.controlnet_cond_embedding.conv_out,
        *controlnet.controlnet_down_blocks,
        controlnet.controlnet_mid_block,
    ]


def env_for_subprocess(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for `vchat` in a subprocess: the zoo's fake cache, offline, one torch thread."""
    from tests.zoo import zoo_root

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VCHAT_"))}
    env.update(
        HF_HUB_CACHE=str(zoo_root() / "hub"),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        NO_COLOR="1",
        COLUMNS="200",
        PYTHONWARNINGS="ignore",
    )
    env.update(extra or {})
    return env
