"""Where weights come from: folders, the HF cache, offline errors and pulling (vchat.runtime.hub)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vchat.errors import ModelLoadError
from vchat.runtime import hub
from vchat.runtime.catalog import COMPONENTS, DEFAULT_MODELS, component, expand_keys


def test_every_default_model_is_in_the_fake_cache(hub_cache: Path) -> None:
    from tests.zoo import hub_ids

    assert hub_ids() == DEFAULT_MODELS  # the zoo covers every default key, under its real id
    for spec in COMPONENTS.values():
        if spec.key == "annotators.openpose":
            continue  # real-size random OpenPose weights would be ~400 MB; not built
        if spec.key in ("sd15.safety_checker", "sd15.feature_extractor"):
            continue  # optional: the zoo's sd15, like many fine-tunes, ships no safety checker
        found, missing = hub.find_files(spec, hub.source_for(spec, {}))
        assert found and not missing, spec.key


def test_offline_missing_model_is_one_line_naming_key_and_fix(
    empty_hub_cache: Path, make_manager: Callable[..., Any]
) -> None:
    manager = make_manager()
    with pytest.raises(ModelLoadError) as err, manager.use("sd15.unet", "sd15.vae"):
        pass
    message = str(err.value)
    assert "\n" not in message
    assert "sd15.unet" in message and "stable-diffusion-v1-5/stable-diffusion-v1-5" in message
    assert "HF_HUB_OFFLINE" in message and "`vchat models pull sd15`" in message
    assert manager.resident() == {} and manager._entries["sd15.unet"].pins == 0


def test_controlnet_and_annotator_errors_name_their_own_key(empty_hub_cache: Path) -> None:
    from vchat.runtime.loading import load_component

    for key, pull in (("controlnet_canny", "controlnet_canny"), ("annotators.hed", "annotators")):
        spec = component(key)
        with pytest.raises(ModelLoadError, match=rf"vchat models pull {pull}`"):
            load_component(spec, hub.source_for(spec, {}), "float32")


def test_local_folder_missing_files_says_which_setting_to_fix(tmp_path: Path, make_manager: Callable[..., Any]) -> None:
    (tmp_path / "unet").mkdir()
    manager = make_manager(models={"sd15": str(tmp_path)})
    with pytest.raises(ModelLoadError) as err, manager.use("sd15.unet"):
        pass
    assert str(err.value) == (
        f"model sd15.unet: folder {tmp_path} has no unet/config.json; fix [models] sd15 in the config file"
    )


def test_sources_for_ids_folders_and_component_overrides(tmp_path: Path) -> None:
    unet = component("sd15.unet")
    assert hub.source_for(unet, {}) == hub.Source("sd15", DEFAULT_MODELS["sd15"], False, "unet")
    assert hub.source_for(unet, {"sd15": "me/my-sd"}) == hub.Source("sd15", "me/my-sd", False, "unet")
    assert hub.source_for(unet, {"sd15": str(tmp_path)}) == hub.Source("sd15", str(tmp_path), True, "unet")
    assert hub.source_for(unet, {"sd15": "./models/sd"}).local
    vae = hub.source_for(component("sd15.vae"), {"sd15.vae": "stabilityai/sd-vae-ft-mse"})
    assert vae == hub.Source("sd15.vae", "stabilityai/sd-vae-ft-mse", False, None)  # its own repo, at the root


def test_component_override_loads_from_its_root(local_models: dict[str, str], make_manager: Callable[..., Any]) -> None:
    manager = make_manager(models={"sd15.vae": str(Path(local_models["sd15"]) / "vae")})
    with manager.use("sd15.vae") as parts:
        assert type(parts["sd15.vae"]).__name__ == "AutoencoderKL"


def test_cache_dir_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub.cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert hub.cache_dir() == tmp_path / "c"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not hub.is_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.is_offline()


SD15_REPO = [
    "model_index.json",
    "v1-5-pruned.safetensors",
    "v1-5-pruned-emaonly.ckpt",
    "unet/config.json",
    "unet/diffusion_pytorch_model.bin",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.non_ema.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "text_encoder/pytorch_model.bin",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "scheduler/scheduler_config.json",
    "safety_checker/model.safetensors",
    "feature_extractor/preprocessor_config.json",
]


def test_pull_selects_only_the_files_components_need() -> None:
    specs = expand_keys(["sd15"])
    sources = {spec.key: hub.source_for(spec, {}) for spec in specs}
    chosen = hub.select_repo_files(SD15_REPO, specs, sources)
    assert sorted(chosen) == sorted(
        [
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "tokenizer/merges.txt",
            "tokenizer/special_tokens_map.json",
            "tokenizer/tokenizer_config.json",
            "tokenizer/vocab.json",
            "scheduler/scheduler_config.json",
            "safety_checker/model.safetensors",  # a checker the checkpoint ships is pulled too
            "feature_extractor/preprocessor_config.json",
        ]
    )
    # A repo with only .bin weights still gets its weights.
    blip = expand_keys(["blip_caption"])
    files = ["config.json", "pytorch_model.bin", "preprocessor_config.json", "tokenizer.json", "vocab.txt"]
    assert "pytorch_model.bin" in hub.select_repo_files(files, blip, {s.key: hub.source_for(s, {}) for s in blip})


def test_pull_downloads_per_repo_with_allow_patterns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    calls: list[tuple[str, list[str]]] = []

    class FakeApi:
        def list_repo_files(self, repo_id: str) -> list[str]:
            return (
                SD15_REPO
                if "stable-diffusion-v1-5" in repo_id
                else ["config.json", "diffusion_pytorch_model.safetensors"]
            )

    def fake_snapshot(repo_id: str, allow_patterns: list[str], cache_dir: str) -> str:
        assert cache_dir == str(tmp_path)
        calls.append((repo_id, allow_patterns))
        return str(tmp_path / repo_id)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(hub, "reachable", lambda timeout=3.0: True)  # the fake API needs no network
    done = hub.pull(["sd15.unet", "controlnet_canny"], {})
    assert [repo for repo, _ in done] == [DEFAULT_MODELS["sd15"], DEFAULT_MODELS["controlnet_canny"]]
    assert calls[0][1] == ["unet/config.json", "unet/diffusion_pytorch_model.safetensors"]


def test_pull_refuses_offline(empty_hub_cache: Path) -> None:
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        hub.pull(["sd15"], {})


def test_unknown_keys_name_the_known_ones() -> None:
    with pytest.raises(KeyError, match="sd15"):
        expand_keys(["sdxl"])
    with pytest.raises(KeyError, match=r"sd15\.unet"):
        component("sd15.unet2")


def test_no_network_fails_fast_and_cached_models_load_without_it(
    hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not offline, but the hub is unreachable: a missing model is one line at once; a cached one loads
    without any request (the libraries would otherwise retry their update check for ~25 s)."""
    import socket
    import threading

    from vchat.runtime import ModelManager

    # A stand-in hub that only counts the connections made to it.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    connections: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            connections.append(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setattr(hub, "reachable", lambda timeout=3.0: False)
        with ModelManager(device="cpu", dtype="float32").use("clipseg", "clipseg.processor", tool="t") as parts:
            assert parts["clipseg"] is not None
        assert connections == []  # loaded from the cache with no update check

        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
        with pytest.raises(ModelLoadError) as err, ModelManager(device="cpu").use("blip_vqa", tool="t"):
            pass
        message = str(err.value)
        assert "cannot be reached" in message and "vchat models pull blip_vqa" in message
        assert "\n" not in message and connections == []
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def test_reachable_probes_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        hub._REACHABLE.clear()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub.reachable(timeout=1.0) is True
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
        assert hub.reachable(timeout=1.0) is False
    finally:
        server.close()
        hub._REACHABLE.clear()
