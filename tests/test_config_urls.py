"""A malformed server address or setting is one line naming where it came from, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.test_cli import vchat

from vchat.config import Settings, load_settings, url_problem
from vchat.errors import ConfigError, VchatError
from vchat.llm.switch import settings_for


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:abc/v1", "http://localhost:11434:/v1", "http://:8080/v1", "https://[::1/v1", "localhost:1/v1"],
)
def test_malformed_addresses_are_named(url: str) -> None:
    assert url_problem(url)


@pytest.mark.parametrize("url", ["http://localhost:11434/v1", "https://api.openai.com/v1", "http://[::1]:8000/v1"])
def test_good_addresses_pass(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("args", "env", "origin"),
    [
        (["doctor"], {"OPENAI_BASE_URL": "http://127.0.0.1:abc/v1"}, "OPENAI_BASE_URL"),
        (["run", "hi"], {"OPENAI_BASE_URL": "http://127.0.0.1:abc/v1"}, "OPENAI_BASE_URL"),
        (["run", "hi", "--base-url", "http://localhost:11434:/v1"], {}, "--base-url"),
        (["run", "hi"], {"VCHAT_BASE_URL": "http://localhost:11434:/v1"}, "VCHAT_BASE_URL"),
        ([], {"OPENAI_API_BASE": "http://localhost:x/v1"}, "OPENAI_API_BASE"),
    ],
)
def test_cli_says_one_line_and_where(tmp_path: Path, args: list[str], env: dict[str, str], origin: str) -> None:
    out = vchat(tmp_path, *args, stdin="", **env)
    assert out.returncode in (1, 2), out
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert origin in lines[0] and "not a valid address" in lines[0]


def test_environment_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="VCHAT_MAX_STEPS"):
        load_settings(env={"VCHAT_MAX_STEPS": "many"}, config_path=None)


def test_unknown_setting_suggests_the_close_one(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('mdoel = "gpt-4o"\n')
    with pytest.raises(ConfigError, match=r"unknown setting 'mdoel'; did you mean 'model'\?"):
        load_settings(env={}, config_path=config)


def test_model_command_refuses_a_malformed_address() -> None:
    with pytest.raises(VchatError, match="not a valid address"):
        settings_for(Settings(), ["http://localhost:11434:/v1", "qwen"], None)


def test_only_the_address_that_wins_is_checked(tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:abc/v1"}
    settings = load_settings({"base_url": "http://localhost:11434/v1"}, env=env, config_path=None)
    assert settings.base_url == "http://localhost:11434/v1"
    config = tmp_path / "config.toml"
    config.write_text('base_url = "http://localhost:x/v1"\n')
    with pytest.raises(ConfigError, match=r"config.toml: base_url 'http://localhost:x/v1' is not a valid"):
        load_settings(env={}, config_path=config)
    assert load_settings(env={"VCHAT_BASE_URL": "http://h:1/v1"}, config_path=config).base_url == "http://h:1/v1"
