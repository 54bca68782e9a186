"""Model tiers: the catalog's two tiers, `auto` sized by device memory, the notice, --tier, and `vchat models`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vchat.cli.models import models_app
from vchat.config import Settings
from vchat.runtime import tiers
from vchat.runtime.catalog import CLASSIC_ONLY, COMPONENTS, CURRENT_ONLY, DEFAULT_MODELS, tier_models

GIB = 1 << 30
WIDE = {"COLUMNS": "250"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_choice() -> Any:
    tiers._CHOSEN.clear()
    tiers.on_first_choice(None)
    yield
    tiers._CHOSEN.clear()
    tiers.on_first_choice(None)


def test_one_catalog_two_tiers() -> None:
    classic, current = set(tier_models("classic")), set(tier_models("current"))
    assert classic | current == set(DEFAULT_MODELS)
    assert not classic & set(CURRENT_ONLY) and not current & set(CLASSIC_ONLY)
    # Tools with no current counterpart keep their classic models in both tiers.
    for shared in ("sd15", "controlnet_canny", "controlnet_depth", "annotators", "segmentation", "blip_caption"):
        assert shared in classic and shared in current
    assert DEFAULT_MODELS["flux2_klein"] == "black-forest-labs/FLUX.2-klein-4B"
    assert DEFAULT_MODELS["sam3"] == "facebook/sam3"
    assert DEFAULT_MODELS["depth_anything"] == "depth-anything/Depth-Anything-V2-Small-hf"
    assert COMPONENTS["sam3"].loader == "transformers:Sam3Model"
    assert COMPONENTS["depth_anything"].loader == "transformers:DepthAnythingForDepthEstimation"


def test_named_tier_wins_and_auto_on_cpu_is_classic() -> None:
    assert tiers.active_tier(Settings(tier="current")) == "current"
    assert tiers.active_tier(Settings(tier="classic")) == "classic"
    choice = tiers.choose(Settings(), memory=("cpu", 20 * GIB, 24 * GIB))
    assert choice.tier == "classic" and "no GPU" in choice.reason


@pytest.mark.parametrize(
    ("total_gib", "llm", "expected"),
    [
        (16, "auto", "current"),  # a 16 GiB GPU holds FLUX.2 [klein] with the 2B planner beside it
        (12, "auto", "classic"),  # 12 GiB does not, with the planner on the same device
        (12, "none", "current"),  # but does when no built-in planner shares it
        (8, "none", "classic"),
        (80, "local", "current"),
    ],
)
def test_auto_sizes_the_device(total_gib: int, llm: str, expected: str) -> None:
    settings = Settings(llm=llm)
    total = total_gib * GIB
    choice = tiers.choose(settings, memory=("cuda:0", total - GIB // 2, total))
    assert choice.tier == expected, choice.reason
    assert "\n" not in choice.line and choice.line.startswith(f"model tier {expected}: cuda:0 budget")
    assert ("planner" in choice.reason) == tiers.planner_beside(settings)


@pytest.mark.parametrize(("mac_gb", "expected"), [(32, "current"), (16, "classic")])
def test_auto_on_apple_mps(mac_gb: int, expected: str) -> None:
    # MPS reports about two thirds of the Mac's memory as its recommended working set.
    total = mac_gb * 10**9 * 2 // 3
    choice = tiers.choose(Settings(), memory=("mps", total - GIB // 4, total))
    assert choice.tier == expected, choice.reason


def test_auto_follows_an_explicit_budget() -> None:
    small = Settings(llm="none")
    small.runtime.vram_budget = "6GB"
    assert tiers.choose(small, memory=("cuda:0", 79 * GIB, 80 * GIB)).tier == "classic"
    unlimited = Settings(llm="none")
    unlimited.runtime.vram_budget = "unlimited"
    assert tiers.choose(unlimited, memory=("cuda:0", 4 * GIB, 8 * GIB)).tier == "current"


def test_peak_counts_the_larger_klein_part_once() -> None:
    alone, beside = tiers.current_peak_bytes(False), tiers.current_peak_bytes(True)
    assert beside - alone == tiers.PLANNER_2B_BYTES
    # The text encoder and the transformer take turns on the device: the peak holds the larger, not both.
    assert alone < 2 * (tiers.KLEIN_TEXT_ENCODER_PARAMS + tiers.KLEIN_TRANSFORMER_PARAMS)
    assert alone >= 2 * tiers.KLEIN_TEXT_ENCODER_PARAMS


def test_auto_is_said_once_through_the_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    tiers.on_first_choice(said.append)
    monkeypatch.setattr(tiers, "choose", lambda settings: tiers.TierChoice("current", "test device"))
    settings = Settings()
    assert tiers.active_tier(settings) == "current"
    assert tiers.active_tier(settings) == "current"
    assert said == ["model tier current: test device (--tier classic or VCHAT_TIER=classic to change)"]
    assert tiers.active_tier(Settings(tier="classic")) == "classic" and len(said) == 1


def test_lineage_names_the_configured_model(tmp_path: Path) -> None:
    folder = str(tmp_path / "my-sam3")
    assert tiers.lineage(Settings(tier="current"), "sam3") == {"model": "facebook/sam3", "tier": "current"}
    assert tiers.lineage(Settings(tier="current", models={"sam3": folder}), "sam3")["model"] == folder


def test_full_size_parameter_counts_match_the_architectures() -> None:
    """The figures `auto` sizes with are the meta-device counts of the full-size klein parts (see benchmarks)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch
    from tier_models import build_full

    from vchat.runtime.memory import module_params

    with torch.device("meta"):
        assert module_params(build_full("flux2_klein.text_encoder")) == tiers.KLEIN_TEXT_ENCODER_PARAMS
        assert module_params(build_full("flux2_klein.transformer")) == tiers.KLEIN_TRANSFORMER_PARAMS
        assert module_params(build_full("flux2_klein.vae")) == tiers.KLEIN_VAE_PARAMS
        assert module_params(build_full("planner_2b")) == tiers.PLANNER_2B_PARAMS


def test_tier_flag_on_the_commands_that_run_tools() -> None:
    from vchat.cli.app import app

    runner = CliRunner()
    for command in (["run"], ["batch"], ["mcp"], ["bench"], []):
        result = runner.invoke(app, [*command, "--help"], env=WIDE)
        assert "--tier" in result.output, command
    bad = runner.invoke(app, ["run", "--tier", "newest", "--tool", "canny_edges"], env=WIDE)
    assert bad.exit_code == 2 and "tier" in bad.output


def test_models_shows_both_tiers_and_marks_the_active_one(
    hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text("")
    monkeypatch.setenv("VCHAT_TIER", "current")
    monkeypatch.setenv("VCHAT_CONFIG", str(tmp_path / "config.toml"))
    result = CliRunner().invoke(models_app, [], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.split()}
    assert " current * " in lines["sam3"] and " classic " in lines["grounding_dino"]
    assert " classic * " not in lines["grounding_dino"] and " both * " in lines["controlnet_canny"]
    assert " yes " in lines["sam3"] and " yes " in lines["depth_anything"]
    assert "active tier: current (set to current)" in result.output


def test_pull_tier_current_fetches_it_from_the_hub(
    zoo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vchat models pull --tier current` downloads the current tier's models through huggingface_hub's real code."""
    from tests.fake_hub import serve

    index = json.loads((zoo_dir / "index.json").read_text())
    fetched_here = ("sam3", "depth_anything")
    repos = {index[key]: zoo_dir / "local" / key for key in fetched_here}
    cache = tmp_path / "hub"
    cache.mkdir()
    # Everything else the tier uses is already downloaded (the zoo's cache, linked), so only the two are fetched.
    for key in tier_models("current"):
        if key in index and key not in fetched_here:
            name = "models--" + index[key].replace("/", "--")
            (cache / name).symlink_to(zoo_dir / "hub" / name)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    # The zoo's annotators lack OpenPose ("partial"): a local folder is never pulled, so name it as one.
    (tmp_path / "config.toml").write_text(f'[models]\nannotators = "{zoo_dir / "local" / "annotators"}"\n')
    monkeypatch.setenv("VCHAT_CONFIG", str(tmp_path / "config.toml"))
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "VCHAT_CONFIG": str(tmp_path / "config.toml"),
        "PYTHONPATH": str(ROOT / "src"),
        "COLUMNS": "250",
    }
    # A process of its own: huggingface_hub reads its endpoint and offline switch once, at import.
    with serve(repos) as fake:
        env["HF_ENDPOINT"] = fake.url
        result = subprocess.run(
            [sys.executable, "-m", "vchat", "models", "pull", "--tier", "current"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert result.returncode == 0, (result.stderr, fake.missing)
    fetched = {line.split("/")[0] + "/" + line.split("/")[1] for line in fake.downloads}
    assert {"facebook/sam3", "depth-anything/Depth-Anything-V2-Small-hf"} <= fetched
    # A model key brings every part of the model: SAM 3's processor and tokenizer with its weights.
    assert {"facebook/sam3/model.safetensors", "facebook/sam3/processor_config.json"} <= set(fake.downloads)
    assert "facebook/sam3/tokenizer.json" in fake.downloads
    # Models the current tier replaced are not fetched for it.
    assert not any(repo.startswith(("IDEA-Research/", "timbrooks/")) for repo in fetched)
    assert (cache / "models--facebook--sam3" / "snapshots").is_dir()
    wrong = CliRunner().invoke(models_app, ["pull", "--tier", "newest"], env=WIDE)
    assert wrong.exit_code == 2 and "--tier must be classic or current" in wrong.output
    both = CliRunner().invoke(models_app, ["pull", "sam3", "--tier", "current"], env=WIDE)
    assert both.exit_code == 2 and "not both" in both.output


def _run_depth(tmp_path: Path, hub_cache: Path, tier: str | None) -> Any:
    from tests.helpers import photo

    from vchat.cli.app import app

    source = tmp_path / "in.png"
    photo().save(source)
    (tmp_path / "config.toml").write_text("")
    env = {**WIDE, "VCHAT_CONFIG": str(tmp_path / "config.toml"), "VCHAT_DEVICE": "cpu", "VCHAT_PREVIEW": "none"}
    flags = ["--tier", tier] if tier else []
    out = tmp_path / "out"
    return CliRunner().invoke(
        app, ["run", "--tool", "estimate_depth", "-i", str(source), "-o", str(out), "--json", *flags], env=env
    )


def _made(stdout: str) -> Path:
    """The file of the one image the tool made, from `vchat run --json` (the attached input is listed too)."""
    data = json.loads(stdout)
    made = [image for image in data["images"] if image["tool"] == "estimate_depth"]
    assert len(made) == 1, data
    return Path(made[0]["path"])


def test_run_says_the_auto_choice_once(tmp_path: Path, hub_cache: Path) -> None:
    result = _run_depth(tmp_path, hub_cache, None)
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("model tier ")]
    assert said == [
        "model tier classic: no GPU or Apple MPS device (FLUX.2 [klein] takes minutes per image on a CPU) "
        "(--tier current or VCHAT_TIER=current to change)"
    ]
    from vchat.store.refs import read_png_record

    record = read_png_record(_made(result.stdout))
    assert record is not None and record["params"] == {"model": "Intel/dpt-hybrid-midas", "tier": "classic"}


def test_run_with_tier_current_names_the_model_in_lineage(tmp_path: Path, hub_cache: Path) -> None:
    from vchat.store.refs import read_png_record

    result = _run_depth(tmp_path, hub_cache, "current")
    assert result.exit_code == 0, result.output
    assert "model tier" not in result.stderr  # a named tier needs no explanation
    record = read_png_record(_made(result.stdout))
    assert record is not None
    assert record["params"] == {"model": "depth-anything/Depth-Anything-V2-Small-hf", "tier": "current"}
