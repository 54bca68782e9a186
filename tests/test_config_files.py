"""Files the user names (config, scripted LLM file, batch inputs, model folders): regular, capped, one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import photo

from vchat.config import load_settings
from vchat.errors import ConfigError, ImageError, LLMError, ModelLoadError
from vchat.llm.scripted import ScriptedLLM
from vchat.store.reading import open_image


def _load(path: Path) -> None:
    load_settings(env={}, config_path=path)


def test_config_with_invalid_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'model = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        _load(path)
    message = str(caught.value)
    assert str(path) in message and "UTF-8" in message and "\n" not in message


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_config_that_is_no_regular_file_says_what_it_is(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "config.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path = Path("/dev/zero")
    with pytest.raises(ConfigError) as caught:
        _load(path)
    word = {"fifo": "named pipe", "device": "device", "folder": "folder"}[kind]
    assert word in str(caught.value) and "does not exist" not in str(caught.value)


def test_config_over_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    with open(path, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(ConfigError, match="over 16 MiB"):
        _load(path)


def test_missing_config_still_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        _load(tmp_path / "nope.toml")


_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # an endless read fails fast, not the machine
from vchat.errors import LLMError
from vchat.llm.scripted import ScriptedLLM
try:
    ScriptedLLM.from_file(sys.argv[1])
except LLMError as exc:
    print(exc)
"""


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_scripted_llm_file_that_never_ends(tmp_path: Path, target: str) -> None:
    if target == "fifo":
        target = str(tmp_path / "pipe")
        os.mkfifo(target)
    done = subprocess.run([sys.executable, "-c", _LIMITED, target], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert target in done.stdout and ("device" in done.stdout or "named pipe" in done.stdout)


def test_scripted_llm_file_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "script.txt"
    with open(path, "wb") as fh:
        fh.truncate(32 * 1024 * 1024)
    with pytest.raises(LLMError, match="over 16 MiB"):
        ScriptedLLM.from_file(path)


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_batch_input_that_is_no_regular_file(tmp_path: Path, target: str) -> None:
    if target == "fifo":
        target = str(tmp_path / "pipe.png")
        os.mkfifo(target)
    with pytest.raises(ImageError) as caught:
        open_image(target, 1_000_000)
    assert "not a regular file" in str(caught.value) and "empty file" not in str(caught.value)


@pytest.mark.parametrize("key", ["timeout", "reply_deadline", "temperature", "top_p"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{key} must be"):
        load_settings(env={f"VCHAT_{key.upper()}": value}, config_path=None)


def test_non_finite_in_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("temperature = nan\ntimeout = inf\n")  # TOML itself allows both
    with pytest.raises(ConfigError, match="must be a finite number"):
        _load(path)


# -- a damaged local model folder ------------------------------------------------------------------------------


@pytest.fixture
def planner_copy(local_models: dict[str, str], tmp_path: Path) -> Path:
    folder = tmp_path / "planner"
    shutil.copytree(local_models["planner"], folder)
    return folder


def _first_reply(folder: Path) -> str:
    from vchat.config import Settings
    from vchat.llm.select import select_llm

    settings = Settings(llm=f"local:{folder}")
    settings.runtime.device = "cpu"
    settings.runtime.dtype = "float32"
    settings.max_tokens = 16
    llm = select_llm(settings, ports=[])
    assert llm is not None
    return "".join(llm.complete([{"role": "user", "content": "hi"}]))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("config.json", lambda p: p.write_bytes(b"{not json")),
        ("config.json", lambda p: p.write_text("[1, 2]")),
        ("model.safetensors", lambda p: p.write_bytes(os.urandom(4096))),
        ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])),
        ("model.safetensors", lambda p: p.write_bytes(b"\xff" * 8 + b"{}")),
    ],
    ids=["config-not-json", "config-not-object", "weights-random", "weights-cut", "weights-huge-header"],
)
def test_damaged_local_planner_names_the_file(planner_copy: Path, name: str, damage: object, hub_cache: Path) -> None:
    assert callable(damage)
    damage(planner_copy / name)
    with pytest.raises(LLMError) as caught:
        _first_reply(planner_copy)
    message = str(caught.value)
    assert str(planner_copy / name) in message and "damaged" in message and "\n" not in message


@pytest.mark.slow
def test_whole_local_planner_still_loads(planner_copy: Path, hub_cache: Path) -> None:
    assert _first_reply(planner_copy)


def test_damaged_tool_model_folder_is_a_model_load_error(local_models: dict[str, str], tmp_path: Path) -> None:
    from vchat.runtime.model_files import check_folder

    folder = tmp_path / "m"
    shutil.copytree(local_models["planner"], folder)
    check_folder(folder, "planner", "planner")  # whole: no error
    photo().save(folder / "model.safetensors", format="PNG")  # a picture where the weights should be
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is damaged"):
        check_folder(folder, "planner", "planner")
