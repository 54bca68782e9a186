"""The built-in planner's one-token decode paths (vchat.llm.qwen_kernels) against transformers' reference code, and
its prefix cache counted in the runtime's memory budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vchat.config import Settings
from vchat.llm.base import Message
from vchat.llm.local import LocalLLM
from vchat.runtime.memory import state_bytes as cache_bytes

SYSTEM = "You are vchat, an assistant that sees, makes and edits images by calling visual tools."
MESSAGES: list[Message] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "flip the image"},
]
SD = ("sd15.unet", "sd15.text_encoder", "sd15.vae")


# Tiny models: one torch thread (see conftest).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def fast_kernels_back() -> Iterator[None]:
    yield
    from vchat.llm import qwen_kernels

    qwen_kernels.install()  # the default a test that turned it off must not leak


def planner(max_tokens: int = 12) -> LocalLLM:
    settings = Settings(max_tokens=max_tokens)
    settings.runtime.dtype, settings.runtime.device = "float32", "cpu"
    # The float weights as loaded: these tests compare decode kernels and count weight bytes (int8 has its own).
    settings.planner_int8 = "off"
    return LocalLLM(settings)


def test_fast_decode_paths_match_the_reference_functions() -> None:
    import torch
    from transformers.models.qwen3_5 import modeling_qwen3_5 as qwen

    from vchat.llm import qwen_kernels

    qwen_kernels.uninstall()
    ref_conv, ref_rule = qwen.causal_conv1d_update, qwen.torch_recurrent_gated_delta_rule
    assert qwen_kernels.install() and qwen.causal_conv1d_update is not ref_conv
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        x, weight = torch.randn(1, 24, 1, dtype=dtype), torch.randn(24, 4, dtype=dtype)
        state = torch.randn(1, 24, 4, dtype=dtype)
        ours_state, ref_state = state.clone(), state.clone()
        ours = qwen.causal_conv1d_update(x, ours_state, weight, None, "silu")
        ref = ref_conv(x, ref_state, weight, None, "silu")
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        assert torch.allclose(ours.float(), ref.float(), atol=1e-2 if dtype == torch.bfloat16 else 1e-5)
        assert torch.equal(ours_state, ref_state)  # the conv state is shifted in place the same way

        # Grouped heads (2 key heads for 4 value heads), one token, from a given state.
        q, k = torch.randn(1, 1, 2, 16, dtype=dtype), torch.randn(1, 1, 2, 16, dtype=dtype)
        v, g, beta = torch.randn(1, 1, 4, 8, dtype=dtype), -torch.rand(1, 1, 4), torch.rand(1, 1, 4, dtype=dtype)
        initial = torch.randn(1, 4, 16, 8)
        kwargs: dict[str, Any] = {"g": g, "beta": beta, "output_final_state": True, "use_qk_l2norm_in_kernel": True}
        out, final = qwen.torch_recurrent_gated_delta_rule(q, k, v, initial_state=initial.clone(), **kwargs)
        ref_out, ref_final = ref_rule(q, k, v, initial_state=initial.clone(), **kwargs)
        assert out.shape == ref_out.shape and out.dtype == ref_out.dtype and final.shape == ref_final.shape
        assert torch.allclose(out.float(), ref_out.float(), atol=1e-2 if dtype == torch.bfloat16 else 1e-5)
        assert torch.allclose(final, ref_final, atol=1e-5)
    qwen_kernels.uninstall()
    assert qwen.causal_conv1d_update is ref_conv and qwen.torch_recurrent_gated_delta_rule is ref_rule


def test_planner_replies_the_same_with_the_fast_paths(hub_cache: Path) -> None:
    llm = planner()
    llm.fast_kernels = False
    reference = list(llm.complete(MESSAGES))
    llm.fast_kernels = True
    assert list(llm.complete(MESSAGES)) == reference and llm.last.new_tokens == 12


def test_prefix_cache_counts_in_the_budget_and_goes_with_the_weights(make_manager: Any) -> None:
    from vchat.runtime.memory import module_bytes

    zoo = {"planner": "Qwen/Qwen3.5-0.8B"}
    sizes = make_manager(vram=None, models=zoo)
    llm = planner()
    llm.bind_runtime(lambda: sizes)
    first = list(llm.complete(MESSAGES))
    weights = module_bytes(sizes._entry("planner").obj)
    state = sum(cache_bytes(kept) for kept in llm.held_state())  # the system prompt's and the last step's
    assert state > 0
    assert sizes.resident()["planner"] == ("sim:0", weights + state)
    assert sizes.device_bytes("sim:0") == weights + state
    with sizes.use(*SD, tool="generate_image"):
        pass
    sd_bytes = sum(sizes.resident()[key][1] for key in SD)

    # Room for the weights of both, not for the kept state on top: the planner must make way for SD.
    budget = weights + sd_bytes + state // 2
    manager = make_manager(vram=budget, models=zoo)
    llm = planner()
    llm.bind_runtime(lambda: manager)
    assert list(llm.complete(MESSAGES)) == first
    assert llm._prefix_cache is not None and manager.device_bytes("sim:0") == weights + state
    with manager.use(*SD, tool="generate_image"):
        assert manager.resident()["planner"] == ("cpu", weights)  # moved off, its cache freed with it
        assert llm._prefix_cache is None
        assert manager.device_bytes("sim:0") <= budget
    assert list(llm.complete(MESSAGES)) == first  # back, the cache rebuilt there and counted again
    assert llm.last.prefix_built and manager.resident()["planner"] == ("sim:0", weights + state)
    assert manager.stats.peak_device_bytes <= budget


def test_reset_cache_stops_counting_it(make_manager: Any) -> None:
    manager = make_manager(vram=None, models={"planner": "Qwen/Qwen3.5-0.8B"})
    llm = planner(max_tokens=2)
    llm.bind_runtime(lambda: manager)
    list(llm.complete(MESSAGES))
    counted, state = manager.device_bytes("sim:0"), sum(cache_bytes(kept) for kept in llm.held_state())
    llm.reset_cache()
    assert state > 0 and manager.device_bytes("sim:0") == counted - state


@pytest.mark.timeout(600)  # a subprocess that loads torch and transformers: slow on a loaded 2-core machine
@pytest.mark.slow
def test_first_use_downloads_the_planner_with_a_progress_bar(tmp_path: Path, zoo_dir: Path) -> None:
    """No key, no server, nothing cached: `vchat` says which planner it picked, fetches it from the (fake) hub
    through huggingface_hub's real download code with a progress bar on stderr, then answers with it. (Loading a
    transformers model used to switch huggingface_hub's bars off for the whole process, so none was drawn.)"""
    from tests.fake_hub import serve

    from test_cli import vchat

    with serve({"Qwen/Qwen3.5-0.8B": zoo_dir / "local" / "planner"}) as hub:
        out = vchat(
            tmp_path,
            stdin="hello\n",
            timeout=240,
            HF_ENDPOINT=hub.url,
            HF_HUB_CACHE=str(tmp_path / "hub"),
            HF_HUB_OFFLINE="0",
            HF_HUB_DISABLE_XET="1",
            VCHAT_DEVICE="cpu",
            VCHAT_MAX_TOKENS="16",
            VCHAT_MAX_FORMAT_RETRIES="0",
            OMP_NUM_THREADS="1",
            # huggingface_hub draws bars only on a terminal (captured stderr is none); this is its switch for "always".
            TQDM_POSITION="-1",
        )
    assert out.returncode == 0, out.stderr
    assert "Qwen/Qwen3.5-0.8B/model.safetensors" in hub.downloads
    text = out.stdout + out.stderr
    assert "using the built-in planner Qwen/Qwen3.5-0.8B" in text and "Traceback" not in text
    # tqdm's bar for the weights file: its name, a percentage and the bar's frame.
    bars = [line for line in out.stderr.replace("\r", "\n").splitlines() if "model.safetensors" in line]
    assert any("100%" in line and "|" in line for line in bars), out.stderr[-2000:]
    assert (tmp_path / "hub" / "models--Qwen--Qwen3.5-0.8B" / "snapshots").is_dir()
