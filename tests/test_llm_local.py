"""The built-in planner (vchat.llm.local) on a tiny random Qwen3.5 from the zoo: loading by default id and from a
folder, streaming, stop strings, the token cap, cancelling, the prefix cache and image inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from vchat.chat.vision import with_images
from vchat.config import Settings
from vchat.llm.base import Message
from vchat.llm.local import LocalLLM
from vchat.llm.select import select_llm

SYSTEM = "You are vchat, an assistant that sees, makes and edits images by calling visual tools."
MESSAGES: list[Message] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "flip the image"}]


# Tiny models: one torch thread (see conftest).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def planner(settings: Settings | None = None, **fields: Any) -> LocalLLM:
    settings = settings or Settings()
    settings.runtime.dtype = "float32"  # random bf16 logits are nearly flat; compare in fp32
    settings.runtime.device = "cpu"
    settings.max_tokens = fields.pop("max_tokens", 16)
    for key, value in fields.items():
        setattr(settings, key, value)
    return LocalLLM(settings)


def reply(llm: LocalLLM, messages: list[Message] = MESSAGES, stop: list[str] | None = None) -> list[str]:
    return list(llm.complete(messages, stop=stop))


@pytest.fixture
def llm(hub_cache: Path) -> LocalLLM:
    """The planner loaded by its default id (Qwen/Qwen3.5-0.8B on CPU) from the fake HF cache."""
    return planner()


def test_default_id_on_cpu_loads_from_the_hf_cache_and_streams(llm: LocalLLM) -> None:
    chunks = reply(llm)
    assert llm.ref == "Qwen/Qwen3.5-0.8B" and llm.name == "Qwen/Qwen3.5-0.8B (built-in)"
    assert len(chunks) > 3 and all(chunks)  # token by token, not one block
    assert llm.last.new_tokens == 16 and llm.last.cached_tokens > 0
    assert llm.manager.resident()["planner"][0] == "cpu"


def test_local_folder_through_llm_local_setting(local_models: dict[str, str], empty_hub_cache: Path) -> None:
    settings = Settings(llm=f"local:{local_models['planner']}")
    settings.runtime.dtype = "float32"
    chosen = select_llm(settings, ports=[])
    assert isinstance(chosen, LocalLLM) and not chosen.picked
    assert chosen.ref == local_models["planner"]
    chosen.max_tokens = 8
    assert "".join(chosen.complete(MESSAGES))
    assert chosen.notice() is None  # chosen on purpose: no first-use notice


def test_greedy_is_deterministic_and_stop_strings_cut_the_reply(llm: LocalLLM) -> None:
    full = "".join(reply(llm))
    assert full == "".join(reply(llm))
    # A stop string taken from the middle of the reply: the reply ends right before it, and decoding stops there.
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    cut = "".join(reply(llm, stop=[stop]))
    assert cut == full[: full.index(stop)]
    assert llm.last.new_tokens < 16
    assert llm.last_finish == "stop"  # ended at the stop string, not at the cap


def test_new_token_cap(hub_cache: Path) -> None:
    long = planner(max_tokens=20)
    text20 = "".join(reply(long))
    short = planner(max_tokens=10)
    text10 = "".join(reply(short))
    assert long.last.new_tokens == 20 and short.last.new_tokens == 10
    assert short.last_finish == "length"  # cut at max_tokens: the agent says so, and never runs a cut step
    assert text20.startswith(text10) and len(text10) < len(text20)


def test_cancel_stops_within_one_token(llm: LocalLLM) -> None:
    flag = {"set": False}
    manager = llm.manager
    llm.bind_runtime(lambda: manager, cancelled=lambda: flag["set"])
    chunks = []
    for chunk in llm.complete(MESSAGES):
        chunks.append(chunk)
        flag["set"] = True  # Ctrl-C during the first chunk
    assert llm.last.new_tokens <= 2 and len(chunks) <= 2


def test_prefix_cache_gives_the_same_tokens_as_no_cache(llm: LocalLLM) -> None:
    other: list[Message] = [MESSAGES[0], {"role": "user", "content": "make it look like winter"}]
    first = reply(llm)
    assert llm.last.prefix_built and llm.last.cached_tokens > 0
    # Reused (deep-copied) for a different conversation with the same system prompt…
    cached = reply(llm, other)
    assert not llm.last.prefix_built and llm.last.cached_tokens > 0
    again = reply(llm)
    llm.use_prefix_cache = False
    assert reply(llm, other) == cached and llm.last.cached_tokens == 0
    assert reply(llm) == first == again


def _grids(llm: LocalLLM) -> list[list[int]]:
    """Records the image grid (t, h, w in patches) of every forward that carries pixels."""
    model = llm.manager._entry("planner").obj
    seen: list[list[int]] = []

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if kwargs.get("pixel_values") is not None:
            assert kwargs["pixel_values"].shape[0] == int(kwargs["image_grid_thw"].prod(-1).sum())
            seen.extend(kwargs["image_grid_thw"].tolist())

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


@pytest.mark.parametrize("side", [128, 64])
def test_images_reach_the_model_as_pixels_sized_as_configured(llm: LocalLLM, tmp_path: Path, side: int) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 150), "red").save(path)
    reply(llm)  # loads the model
    grids = _grids(llm)
    messages: list[Message] = [MESSAGES[0], {"role": "user", "content": with_images("look", [("img1", path)], side)}]
    assert isinstance(messages[1]["content"], list)
    text = reply(llm, messages)
    assert llm.last.images == 1 and len(grids) == 1
    t, h, w = grids[0]
    # 16-px patches: the long side is the configured size (rounded to the 32-px merge grid), the aspect kept.
    assert t == 1 and w * 16 == side and h < w
    # Pixels with the prefix cache and without give the same greedy reply (M-RoPE positions included).
    llm.use_prefix_cache = False
    assert reply(llm, messages) == text


def test_auto_selection_order(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_openai import FakeOpenAI
    from vchat.llm.openai_backend import OpenAIChat

    # An API key wins over everything found on this machine…
    assert isinstance(select_llm(Settings(api_key="sk-test-0123456789"), ports=[]), OpenAIChat)
    with FakeOpenAI() as fake:
        # …a local server over the built-in planner…
        found = select_llm(Settings(), ports=[fake.port])
        assert isinstance(found, OpenAIChat) and found.base_url == fake.url
        # …and an explicit choice over a server.
        assert isinstance(select_llm(Settings(llm="local"), ports=[fake.port]), LocalLLM)
    picked = select_llm(Settings(), ports=[])
    assert isinstance(picked, LocalLLM) and picked.picked


def test_first_use_notice_only_before_the_download(hub_cache: Path, empty_hub_cache: Path) -> None:
    settings = Settings()
    settings.runtime.device = "cpu"
    picked = select_llm(settings, ports=[])
    assert isinstance(picked, LocalLLM)
    notice = picked.notice()
    assert notice is not None and "\n" not in notice
    assert "Qwen/Qwen3.5-0.8B" in notice and "1.8 GB" in notice and "--llm local:" in notice


def test_no_notice_once_downloaded(hub_cache: Path) -> None:
    settings = Settings()
    settings.runtime.device = "cpu"
    picked = select_llm(settings, ports=[])
    assert isinstance(picked, LocalLLM) and picked.notice() is None


def test_default_planner_by_device() -> None:
    from vchat.runtime.catalog import planner_default

    assert planner_default("cpu") == "Qwen/Qwen3.5-0.8B"
    assert planner_default("cuda:0") == planner_default("mps") == "Qwen/Qwen3.5-2B"


@pytest.mark.slow
def test_vchat_with_no_key_and_no_server_chats_with_the_builtin_planner(tmp_path: Path, zoo_dir: Path) -> None:
    from test_cli import vchat

    out = vchat(
        tmp_path,
        stdin="hello\n",
        timeout=240,
        HF_HUB_CACHE=str(zoo_dir / "hub"),
        HF_HUB_OFFLINE="1",
        VCHAT_DEVICE="cpu",
        VCHAT_MAX_TOKENS="16",
        VCHAT_MAX_FORMAT_RETRIES="0",
        OMP_NUM_THREADS="1",
    )
    assert out.returncode == 0, out.stderr
    assert "Qwen/Qwen3.5-0.8B (built-in)" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    # The random tiny model answered: the transcript holds its reply, from the planner run in-process.
    import json

    from vchat.store.transcript import TRANSCRIPT_NAME

    (transcript,) = (tmp_path / "out").glob(f"*/{TRANSCRIPT_NAME}")
    records = [json.loads(line) for line in transcript.read_text().splitlines()]
    assert records[0]["model"] == "Qwen/Qwen3.5-0.8B (built-in)"
    replies = [r["reply"] for r in records if r.get("type") == "step" and r.get("reply")]
    assert replies and replies[0].strip()


def test_planner_and_a_diffusion_tool_take_turns_within_the_budget(make_manager: Any) -> None:
    sd = ("sd15.unet", "sd15.text_encoder", "sd15.vae")
    # The zoo has the tiny model under the CPU default id; on an accelerator the default would be the 2B.
    zoo = {"planner": "Qwen/Qwen3.5-0.8B"}
    sizes = make_manager(vram=None, models=zoo)
    llm = planner()
    llm.bind_runtime(lambda: sizes)
    reply(llm)
    with sizes.use(*sd, tool="generate_image"):
        pass
    planner_bytes = sizes.resident()["planner"][1]
    sd_bytes = sum(sizes.resident()[key][1] for key in sd)
    # Room for either, not both: each turn must move the other off the (simulated) accelerator.
    budget = max(planner_bytes, sd_bytes) + 1024
    assert planner_bytes + sd_bytes > budget

    manager = make_manager(vram=budget, models=zoo)
    llm = planner()
    llm.bind_runtime(lambda: manager)
    first = reply(llm)
    model = manager._entry("planner").obj
    for _ in range(2):
        with manager.use(*sd, tool="generate_image"):
            assert manager.resident()["planner"][0] == "cpu"  # moved off for the diffusion tool
            assert manager.device_bytes("sim:0") <= budget
        assert reply(llm) == first  # brought back, same weights, same reply
        assert manager.resident()["planner"][0] == "sim:0"
        assert manager._entry("planner").obj is model  # never a second copy
    assert manager.stats.peak_device_bytes <= budget
    assert manager.stats.loads == 5  # planner, its processor and three SD parts, each loaded once
    assert manager.stats.evictions >= 4


def test_switching_to_the_planner_binds_it_to_the_session_runtime(hub_cache: Path, tmp_path: Path) -> None:
    from vchat.session import Session

    session = Session(Settings(out_dir=tmp_path), [], None)
    llm = planner()
    session.llm = llm  # what /model local does
    assert llm.manager is session.models
    session.cancel_event.set()
    assert reply(llm) == [] and llm.last.new_tokens == 0  # a cancelled turn decodes nothing


def test_reply_deadline_is_one_line_error(hub_cache: Path) -> None:
    from vchat.errors import LLMError

    llm = planner(reply_deadline=1e-6)
    with pytest.raises(LLMError, match="reply_deadline"):
        reply(llm)


def test_a_gpu_without_the_fast_kernel_packages_is_said_once_at_start(
    hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from vchat.llm import qwen_kernels
    from vchat.runtime.manager import ModelManager

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("fla", "causal_conv1d") else real_find_spec(name, *a),
    )
    assert qwen_kernels.gpu_hint("cpu") is None  # they need CUDA: nothing to say on CPU
    hint = qwen_kernels.gpu_hint("cuda:0")
    assert hint is not None and "pip install causal-conv1d flash-linear-attention" in hint

    settings = Settings()
    settings.runtime.device = "cpu"
    picked = select_llm(settings, ports=[])
    assert isinstance(picked, LocalLLM) and picked.notice() is None  # downloaded, on CPU: nothing to say
    monkeypatch.setattr(ModelManager, "device", property(lambda self: "cuda:0"))
    assert picked.notice() == hint  # the one line the REPL and `vchat run` print when a session starts
