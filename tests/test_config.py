from __future__ import annotations

from pathlib import Path

import pytest

from vchat.config import is_local_url, load_settings
from vchat.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_defaults_without_file(tmp_path: Path) -> None:
    settings = load_settings(env={})
    assert settings.max_steps == 8
    assert settings.llm == "auto"


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'model = "from-file"\nmax_steps = 4\nbase_url = "http://file/v1"\n'
        '[models]\nsd15 = "~/weights/sd15"\n[runtime]\ndevice = "cpu"\n[tools.generate_image]\nkeep = "offload"\n',
    )
    env = {"VCHAT_MODEL": "from-env", "OPENAI_BASE_URL": "http://env/v1", "VCHAT_MAX_STEPS": "5"}
    settings = load_settings({"max_steps": 6}, env=env, config_path=path)
    assert settings.model == "from-env"
    assert settings.base_url == "http://env/v1"
    assert settings.max_steps == 6
    assert settings.models["sd15"].endswith("weights/sd15") and "~" not in settings.models["sd15"]
    assert settings.runtime.device == "cpu"
    assert settings.tool_policy("generate_image").keep == "offload"
    assert settings.config_path == path


def test_legacy_openai_api_base_and_vchat_over_openai(tmp_path: Path) -> None:
    settings = load_settings(env={"OPENAI_API_BASE": "http://legacy/v1", "OPENAI_API_KEY": "sk-x"})
    assert settings.base_url == "http://legacy/v1"
    assert settings.api_key == "sk-x"
    settings = load_settings(env={"OPENAI_BASE_URL": "http://a/v1", "VCHAT_BASE_URL": "http://b/v1"})
    assert settings.base_url == "http://b/v1"


def test_vchat_config_env_points_at_file(tmp_path: Path) -> None:
    path = _write(tmp_path, 'preview = "blocks"\n')
    assert load_settings(env={"VCHAT_CONFIG": str(path)}).preview == "blocks"


def test_key_is_not_in_repr() -> None:
    settings = load_settings(env={"OPENAI_API_KEY": "sk-secret-123"})
    assert "sk-secret-123" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_steps = 'many'", "not a valid int"),
        ("colour = 'red'", "unknown setting 'colour'"),
        ("preview = 'hologram'", "preview must be one of"),
        ("max_steps = 0", "at least 1"),
        ("[tools.x]\nkeep = 'forever'", "keep must be resident or offload"),
        ("[runtime]\nspeed = 'fast'", "unknown setting runtime.speed"),
        ("model = ", "invalid TOML"),
        ("llm = 'magic'", "llm must be"),
        ("safety_checker = 'maybe'", "safety_checker must be auto, on or off"),
        ("sd_max_side = 64", "sd_max_side must be at least 256"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, config_path=_write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"VCHAT_CONFIG": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://localhost:11434/v1", True),
        ("http://127.0.0.1:8080/v1", True),
        ("https://api.openai.com/v1", False),
        (None, False),
    ],
)
def test_is_local_url(url: str | None, local: bool) -> None:
    assert is_local_url(url) is local
