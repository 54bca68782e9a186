"""The safety checker: run when the checkpoint ships one (or when asked), a flagged image reported and never saved."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from tests import gen_fixtures as gf

from vchat.runtime import COMPONENTS
from vchat.tools.generation.safety import BLOCKED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_catalog_has_the_checker() -> None:
    assert "sd15.safety_checker" in COMPONENTS


def sd15_with_checker(folder: Path, flags_everything: bool) -> Path:
    """A copy of the zoo's sd15 with a tiny random safety checker whose thresholds flag every image, or none."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from tests.zoo import TINY_VISION, zoo_root
    from transformers import CLIPConfig, CLIPImageProcessor

    shutil.copytree(zoo_root() / "local" / "sd15", folder)
    vision = dict(TINY_VISION)
    text = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2}
    checker = StableDiffusionSafetyChecker(CLIPConfig(text_config=text, vision_config=vision, projection_dim=32))
    with torch.no_grad():
        # A concept counts when cosine similarity exceeds its threshold; similarities lie in -1..1.
        checker.concept_embeds_weights.fill_(-10.0 if flags_everything else 10.0)
        checker.special_care_embeds_weights.fill_(10.0)
    checker.save_pretrained(folder / "safety_checker")
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(folder / "feature_extractor")
    return folder


@pytest.fixture(scope="module")
def models() -> Any:
    yield from gf.module_models()


def _session(tmp_path: Path, flags: bool, **settings: Any) -> Any:
    from vchat.runtime import ModelManager

    folder = sd15_with_checker(tmp_path / "sd15", flags)
    manager = ModelManager({"sd15": str(folder)}, device="cpu", dtype="float32")
    return gf.gen_session(tmp_path, manager, **settings)


def _generate(session: Any) -> Any:
    return session.run_tool("generate_image", named={"prompt": "a red car", "width": 64, "height": 64, **gf.FAST})


def test_a_flagged_image_is_reported_and_not_saved(tmp_path: Path, models: Any) -> None:
    session = _session(tmp_path, flags=True)  # "auto": the checkpoint ships a checker, so it runs
    step = _generate(session)
    assert step.observation == f"generate_image failed: {BLOCKED}"
    assert not step.images and gf.files_in(session.folder) == ["session.jsonl"]


def test_a_clean_image_passes(tmp_path: Path, models: Any) -> None:
    step = _generate(_session(tmp_path, flags=False, safety_checker="on"))
    assert step.images and step.observation.startswith("Generated a 64x64 image")


def test_off_skips_the_checker(tmp_path: Path, models: Any) -> None:
    step = _generate(_session(tmp_path, flags=True, safety_checker="off"))
    assert step.images
