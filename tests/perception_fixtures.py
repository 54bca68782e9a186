"""Fixtures for the perception tool tests: tiny OpenPose weights, one model manager per test module, sessions."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import photo

from vchat.config import Settings

# OpenPose's three networks are fixed by controlnet_aux and ~550 MiB at real size. Every tensor here is a view of
# one shared random storage, which torch.save writes once: ~9 MiB per file, loaded through the real code.
OPENPOSE_FILES = ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth")


def _shared_weights(state: dict[str, Any], zero: bool) -> dict[str, Any]:
    import torch

    size = max(t.numel() for t in state.values())
    storage = torch.zeros(size) if zero else torch.randn(size, generator=torch.Generator().manual_seed(0)) * 0.02
    return {key: storage[: t.numel()].view(t.shape) for key, t in state.items()}


def build_openpose(folder: Path, zero: bool = True) -> None:
    """Write OpenPose weights controlnet_aux can load; zero weights make it find no person, deterministically."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from controlnet_aux.open_pose.face import FaceNet
        from controlnet_aux.open_pose.model import bodypose_model, handpose_model

    folder.mkdir(parents=True, exist_ok=True)
    for name, net, strip in (
        ("body_pose_model.pth", bodypose_model(), True),
        ("hand_pose_model.pth", handpose_model(), True),
        ("facenet.pth", FaceNet(), False),
    ):
        weights = _shared_weights(net.state_dict(), zero)
        if strip:  # the body and hand checkpoints are stored without the first key component
            weights = {".".join(k.split(".")[1:]): v for k, v in weights.items()}
        torch.save(weights, folder / name)


@pytest.fixture(scope="session")
def openpose_dir(zoo_dir: Path) -> Path:
    """A folder with tiny OpenPose weights (the zoo's annotators hold HED and M-LSD only), built once."""
    from filelock import FileLock

    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    folder = zoo_dir.parent / f"openpose-{digest}"
    with FileLock(str(zoo_dir.parent / "openpose.lock")):
        if not all((folder / name).exists() for name in OPENPOSE_FILES):
            tmp = Path(tempfile.mkdtemp(prefix=".openpose-", dir=zoo_dir.parent))
            build_openpose(tmp)
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
    return folder


_SHARED: dict[str, Any] = {}


def shared_manager(openpose_dir: Path) -> Any:
    """One CPU ModelManager (fp32) for all perception test modules, so each model loads once per test run.

    A plain module global, not a session fixture: a fixture imported into several test modules is instantiated
    once per module. The manager reads the environment only when it loads, so `manager` sets the cache first.
    """
    from vchat.runtime import ModelManager

    if "manager" not in _SHARED:
        _SHARED["manager"] = ModelManager({"annotators.openpose": str(openpose_dir)}, device="cpu", dtype="float32")
    return _SHARED["manager"]


@pytest.fixture(scope="module")
def perception_models(openpose_dir: Path) -> dict[str, str]:
    """The `[models]` table of these tests: default hub ids (fake cache) plus the OpenPose folder."""
    return {"annotators.openpose": str(openpose_dir)}


@pytest.fixture(scope="module")
def offline_hub(zoo_dir: Path) -> Iterator[Path]:
    """Like conftest's `hub_cache` but for a whole module (a function-scoped one cannot feed module fixtures)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_CACHE", str(zoo_dir / "hub"))
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield zoo_dir / "hub"


@pytest.fixture(scope="module")
def manager(offline_hub: Path, openpose_dir: Path) -> Iterator[Any]:
    """The shared manager, with default hub ids resolving to the zoo's fake cache while the module runs."""
    with warnings.catch_warnings():
        # numpy 2.4 + torch, and controlnet_aux's import (timm, mediapipe): noise, not the code under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield shared_manager(openpose_dir)


def perception_session(
    tmp_path: Path, manager: Any, models: dict[str, str], replies: list[str] | None = None, **image: Any
) -> Any:
    """A session over the shared manager with one photo attached as img1 (`image`: photo() arguments or `mode`)."""
    from vchat.llm.scripted import ScriptedLLM
    from vchat.session import Session
    from vchat.tools.registry import all_tools

    mode = image.pop("mode", "RGB")
    picture = photo(**image)
    if mode == "RGBA":
        picture = picture.convert("RGBA")
        picture.putalpha(picture.getchannel("R"))  # partly transparent, not a flat alpha
    elif mode != "RGB":
        picture = picture.convert(mode)
    path = tmp_path / "input.png"
    picture.save(path)
    settings = Settings(out_dir=tmp_path / "out", models=dict(models))
    session = Session(settings, all_tools(), ScriptedLLM(replies) if replies is not None else None, models=manager)
    session.attach(path)
    return session
