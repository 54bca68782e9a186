"""Devices, dtypes, budgets and byte counting (vchat.runtime.devices, vchat.runtime.memory)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vchat.errors import ConfigError
from vchat.runtime import memory
from vchat.runtime.devices import is_accelerator, resolve_device, resolve_dtype


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6GB", 6 * 10**9),
        ("5.5GiB", int(5.5 * 2**30)),
        ("512 MB", 512 * 10**6),
        ("1024", 1024),
        (2048, 2048),
        ("auto", None),
        (None, None),
    ],
)
def test_parse_size(text: str | int | None, expected: int | None) -> None:
    assert memory.parse_size(text) == expected


def test_parse_size_error_is_one_actionable_line() -> None:
    with pytest.raises(ConfigError) as err:
        memory.parse_size("six gigs", "vram_budget")
    assert "\n" not in str(err.value) and "vram_budget" in str(err.value) and "6GB" in str(err.value)


def test_parse_budget_distinguishes_auto_and_unlimited() -> None:
    assert memory.parse_budget("auto") == memory.AUTO
    assert memory.parse_budget("unlimited") is None
    assert memory.parse_budget(None) is None
    assert memory.parse_budget("2GB") == 2 * 10**9


def test_auto_budget_keeps_a_reserve() -> None:
    gib = 2**30
    assert memory.auto_budget(8 * gib, 8 * gib, accelerator=True) == 8 * gib - gib  # 1 GiB floor
    assert memory.auto_budget(80 * gib, 80 * gib, accelerator=True) == 72 * gib  # 10 % of a big card
    assert memory.auto_budget(gib // 2, 8 * gib, accelerator=True) == 0
    assert memory.auto_budget(16 * gib, 16 * gib, accelerator=False) == 16 * gib - int(16 * gib * 0.15)


def test_dtype_policy() -> None:
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("float16", "cpu") == "float32"  # CPU always computes in fp32
    assert resolve_dtype("auto", "cuda:0") == "float16"
    assert resolve_dtype("auto", "mps") == "float16"
    assert resolve_dtype("bf16", "cuda:0") == "bfloat16"
    assert resolve_dtype("auto", "cuda:0", fp16_safe=False) == "float32"
    with pytest.raises(ConfigError):
        resolve_dtype("int8", "cuda:0")


def test_device_resolution() -> None:
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "mps", "cuda:0")
    assert not is_accelerator("cpu") and is_accelerator("cuda:0")
    with pytest.raises(ConfigError, match="not one of"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match="cuda or cuda:N"):
        resolve_device("cuda:x")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ConfigError) as err:
        resolve_device(f"cuda:{count}")
    assert "\n" not in str(err.value)


def test_module_bytes_counts_tied_weights_once_and_works_on_meta() -> None:
    import torch

    with torch.device("meta"):
        net = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
    net[1].weight = net[0].weight  # tied, like a language model head
    assert memory.module_bytes(net) == 10 * 4 * 4
    assert memory.module_params(net) == 40

    class Wrapper:  # like controlnet_aux detectors, which hold their network in an attribute
        def __init__(self) -> None:
            self.model = torch.nn.Linear(2, 2)

    assert memory.module_bytes(Wrapper()) == (4 + 2) * 4


def test_safetensors_estimate_matches_the_loaded_module(zoo_dir: Path) -> None:
    from diffusers import UNet2DConditionModel

    path = zoo_dir / "local" / "sd15" / "unet" / "diffusion_pytorch_model.safetensors"
    unet = UNet2DConditionModel.from_pretrained(zoo_dir / "local" / "sd15", subfolder="unet")
    assert memory.estimate_bytes([path], 4) == memory.module_bytes(unet)
    assert memory.estimate_bytes([path], 2) == memory.module_bytes(unet) // 2


def test_is_oom() -> None:
    import torch

    from vchat.runtime.devices import is_oom

    assert is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_oom(ValueError("out of memory"))
    assert not is_oom(RuntimeError("shape mismatch"))


def test_importing_the_runtime_loads_no_model_library() -> None:
    code = (
        "import sys, vchat.runtime, vchat.runtime.pipelines, vchat.runtime.hub, vchat.cli.models\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'accelerate') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
