"""Shared pytest fixtures."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# CI must not fail on a new random example one day and pass the next: property tests draw the same examples
# every run. HYPOTHESIS_PROFILE=explore searches with fresh randomness when hunting bugs locally.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _private_user_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own user data folder: the sessions index and REPL history never touch the real one."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


# ---------------------------------------------------------------------------------------------------------------
# Model runtime: tiny random-weight models for every default key, built once per fingerprint
# (tests/zoo.py), loadable by hub id through a fake HF cache or from local folders; a simulated accelerator.
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    """Root of the built zoo: `local/KEY/` folders and `hub/models--ORG--NAME/…` (a fake HF cache)."""
    from tests.zoo import zoo_root

    return zoo_root()


@pytest.fixture(scope="session")
def local_models(zoo_dir: Path) -> dict[str, str]:
    """A `[models]` table pointing every zoo key at its local folder."""
    from tests.zoo import hub_ids

    return {key: str(zoo_dir / "local" / key) for key in hub_ids()}


@pytest.fixture
def hub_cache(zoo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline mode with HF_HUB_CACHE at the zoo's fake cache: default hub ids load the tiny models."""
    monkeypatch.setenv("HF_HUB_CACHE", str(zoo_dir / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return zoo_dir / "hub"


@pytest.fixture
def empty_hub_cache(hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline mode with an empty HF cache: nothing can load by hub id (set after `hub_cache`, so it wins)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hub"


@pytest.fixture
def make_manager(hub_cache: Path) -> Iterator[Callable[..., Any]]:
    """Build ModelManagers on a simulated accelerator `sim:0` (fp32, CPU memory) over the fake cache."""
    from tests.zoo import SimulatedBackend

    from vchat.runtime import ModelManager

    made: list[Any] = []

    def make(vram: int | str | None = None, ram: int | str | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("device", "sim:0")
        kwargs.setdefault("dtype", "float32")
        kwargs.setdefault("backend", SimulatedBackend())
        manager = ModelManager(kwargs.pop("models", None), vram_budget=vram, ram_budget=ram, **kwargs)
        made.append(manager)
        return manager

    # numpy 2.4 + torch: some diffusers schedulers warn about `__array__ copy`; harmless here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield make
    for manager in made:
        manager.clear()


# --------------------------------------------------------------------------------------------- end model runtime


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a loaded machine a second OpenMP thread waits on the first."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
