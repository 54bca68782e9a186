"""`vchat models`, `vchat models pull` and `vchat doctor` (vchat.cli.models)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import answer
from typer.testing import CliRunner

from vchat.cli.models import doctor, model_rows, models_app
from vchat.config import Settings
from vchat.runtime.catalog import DEFAULT_MODELS, components_of, tier_models

WIDE = {"COLUMNS": "250"}


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VCHAT_CONFIG", str(tmp_path / "config.toml"))
    (tmp_path / "config.toml").write_text("")
    return tmp_path / "config.toml"


def test_models_lists_every_key_with_id_state_and_size(hub_cache: Path, no_config: Path) -> None:
    result = CliRunner().invoke(models_app, [], env=WIDE)
    assert result.exit_code == 0, result.output
    for key, repo in DEFAULT_MODELS.items():
        line = next(line for line in result.output.splitlines() if line.split() and line.split()[0] == key)
        assert repo in line
        if key != "annotators" and components_of(key):  # the zoo has no OpenPose weights
            assert " yes " in line and " - " in line  # downloaded, not loaded in this process
    assert "HF_HUB_OFFLINE" in result.output


def test_models_with_empty_cache_and_a_local_folder(
    empty_hub_cache: Path, local_models: dict[str, str], no_config: Path
) -> None:
    no_config.write_text(f'[models]\nsd15 = "{local_models["sd15"]}"\n')
    result = CliRunner().invoke(models_app, [], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.split()}
    assert local_models["sd15"] in lines["sd15"] and "folder" in lines["sd15"]
    assert " no " in lines["blip_caption"]


@pytest.mark.slow
def test_model_rows_report_where_components_are_loaded(hub_cache: Path, make_manager: object) -> None:
    manager = make_manager()  # type: ignore[operator]
    with manager.use("sd15.vae"):
        pass
    rows = {row["key"]: row for row in model_rows(Settings(), manager)}
    assert rows["sd15"]["resident"] == "sim:0" and rows["sd15"]["bytes"] > 0
    assert rows["sam"]["resident"] == ""


def test_pull_offline_is_one_line_error(empty_hub_cache: Path, no_config: Path) -> None:
    result = CliRunner().invoke(models_app, ["pull", "sd15"], env=WIDE)
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0  # only the error: nothing is planned that cannot happen
    assert "HF_HUB_OFFLINE" in result.output


def test_pull_unknown_key(hub_cache: Path, no_config: Path) -> None:
    result = CliRunner().invoke(models_app, ["pull", "sdxl"], env=WIDE)
    assert result.exit_code == 2 and "unknown model 'sdxl'" in result.output  # a bad command line
    result = CliRunner().invoke(models_app, ["pull", "sd16"], env=WIDE)
    assert result.exit_code == 2 and "unknown model 'sd16'; did you mean sd15?" in result.output
    # What the user typed is shown as typed, never read as markup (it once raised MarkupError).
    result = CliRunner().invoke(models_app, ["pull", "[/x]"], env=WIDE)
    assert result.exit_code == 2 and "unknown model '[/x]'" in result.output, result.output


def test_pull_without_keys_fetches_what_is_missing(
    empty_hub_cache: Path, no_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vchat.runtime import hub

    pulled: list[list[str]] = []
    monkeypatch.setattr(hub, "pull", lambda keys, models, log=None: pulled.append(keys) or [])
    monkeypatch.setattr(hub, "ensure_pullable", lambda: None)
    result = CliRunner().invoke(models_app, ["pull"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert pulled == [list(tier_models("classic"))]  # auto is classic on a machine without a GPU


def test_doctor_reports_runtime_and_never_the_api_key(
    empty_hub_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fake_openai import FakeOpenAI

    secret = "sk-test-very-secret-123456"
    with FakeOpenAI([answer("ok")]) as fake:  # the language model check must not go to the internet
        doctor(Settings(api_key=secret, base_url=fake.url, models={"sdxl": "x/y"}))
    out = capsys.readouterr().out
    assert secret not in out and "sk-" not in out
    for label in ("device", "dtype", "RAM", "HF cache", "offline", "models"):
        assert any(line.startswith(label) for line in out.splitlines()), label
    assert str(empty_hub_cache) in out and "cannot download while offline" in out
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in out
    assert "unknown key(s) ignored: sdxl" in out


def test_doctor_checks_the_language_model_and_says_what_to_do(
    empty_hub_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI([answer("ok")], models=["m1"]) as fake:
        doctor(Settings(base_url=fake.url, model="m1"))
        out = capsys.readouterr().out
        assert f"language model  m1 @ 127.0.0.1:{fake.port} (base_url is set)" in out
        assert "answers         yes, in " in out
        assert fake.chat_requests[0].messages[-1]["content"] == "Reply with the single word: ok"
    doctor(Settings(base_url=fake.url, model="m1"))  # the server is gone now
    out = capsys.readouterr().out
    answers = next(line for line in out.splitlines() if line.startswith("answers"))
    assert "answers         no: " in answers and "is the server running" in answers
    assert f"curl {fake.url}/models" in answers


def test_doctor_check_has_a_deadline(empty_hub_cache: Path) -> None:
    from tests.fake_openai import FakeOpenAI, Fault

    from vchat.llm.check import llm_rows

    with FakeOpenAI([Fault.delay(5)]) as fake:
        rows = dict(llm_rows(Settings(base_url=fake.url, model="slow"), timeout=0.5))
    assert rows["answers"].startswith("no: no reply within 0.5s; is the server running")
    assert dict(llm_rows(Settings(llm="none")))["language model"].startswith("none (llm = none)")


@pytest.mark.parametrize("up", [True, False])
def test_doctor_offline_row_tells_the_truth(
    up: bool, empty_hub_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without HF_HUB_OFFLINE but with no way to the hub, doctor says offline, not "no"."""
    import socket

    monkeypatch.delenv("HF_HUB_OFFLINE")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if up:
        listener.listen()
    else:
        listener.close()  # nothing listens on that port any more: connections are refused
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    try:
        doctor(Settings(llm="none"))
    finally:
        listener.close()
    offline = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("offline"))
    if up:
        assert offline.endswith(f"no (http://127.0.0.1:{port} answers)")
    else:
        assert f"yes: http://127.0.0.1:{port} cannot be reached" in offline


def test_doctor_does_not_download_the_builtin_planner(empty_hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vchat.llm.check import llm_rows

    monkeypatch.setattr("vchat.llm.select.LOCAL_SERVERS", {})
    settings = Settings()
    settings.runtime.device = "cpu"
    rows = dict(llm_rows(settings))
    assert rows["language model"] == "Qwen/Qwen3.5-0.8B (built-in) (no API key or local server found)"
    assert (
        rows["answers"] == "not tried: Qwen/Qwen3.5-0.8B is not downloaded yet; `vchat models pull planner` fetches it"
    )


@pytest.mark.slow
def test_doctor_tries_the_builtin_planner_when_it_is_here(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vchat.llm.check import llm_rows

    monkeypatch.setattr("vchat.llm.select.LOCAL_SERVERS", {})
    settings = Settings(llm="local", max_tokens=16)
    settings.runtime.device = "cpu"
    rows = dict(llm_rows(settings))
    assert rows["language model"] == "Qwen/Qwen3.5-0.8B (built-in) (llm = local)"
    # The tiny random model's words mean nothing; the check is that a reply comes back in time.
    assert rows["answers"].startswith("yes, in "), rows["answers"]
