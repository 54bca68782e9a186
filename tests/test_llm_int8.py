"""Weight-only int8 for the built-in planner (llm/int8.py) and the thread count it decodes with (llm/threads.py)."""

from __future__ import annotations

import pytest

from vchat.config import Settings
from vchat.llm.int8 import Int8Embedding, Int8Linear, int8_wanted, quantize_planner, quantize_rows
from vchat.llm.threads import auto_threads

torch = pytest.importorskip("torch")


def test_int8_rows_reproduce_the_layer_within_a_percent() -> None:
    torch.manual_seed(0)
    weight, bias = torch.randn(300, 64), torch.randn(300)
    rows, scales = quantize_rows(weight)
    assert rows.dtype == torch.int8 and int(rows.abs().max()) == 127  # each row's largest value maps to 127
    assert torch.allclose(rows.float() * scales.unsqueeze(1), weight, atol=float(scales.max()))
    x = torch.randn(5, 64)
    for dtype in (torch.float32, torch.bfloat16):
        layer = Int8Linear(weight.to(dtype), bias.to(dtype))
        out = layer(x.to(dtype))
        ref = torch.nn.functional.linear(x, weight, bias)
        assert out.dtype == dtype and out.shape == ref.shape
        assert float((out.float() - ref).norm() / ref.norm()) < 0.02


def test_the_planner_gets_int8_layers_and_one_shared_table_for_both_ends() -> None:
    from tests.zoo import planner_config, planner_tokenizer
    from transformers import Qwen3_5ForConditionalGeneration

    torch.manual_seed(0)
    model = Qwen3_5ForConditionalGeneration(planner_config(planner_tokenizer(), init_std=0.02)).eval()
    ids = torch.arange(3, 20).view(1, -1)
    with torch.inference_mode():
        before = model(input_ids=ids).logits
    vision = [type(m) for m in model.model.visual.modules()]
    count = quantize_planner(model)
    language = model.model.language_model
    assert count == 1 + sum(isinstance(m, Int8Linear) for m in language.modules())
    assert not [m for m in language.modules() if type(m) is torch.nn.Linear]
    assert isinstance(language.embed_tokens, Int8Embedding)
    assert language.embed_tokens.weight_int8 is model.lm_head.weight_int8  # tied: one int8 table
    assert [type(m) for m in model.model.visual.modules()] == vision  # the vision tower is left as it is
    with torch.inference_mode():
        after = model(input_ids=ids).logits
    assert float((after - before).norm() / before.norm()) < 0.05
    assert bool((after.argmax(-1) == before.argmax(-1)).float().mean() > 0.8)


def test_int8_is_for_a_cpu_and_can_be_turned_off() -> None:
    settings = Settings()
    assert int8_wanted(settings, "cpu") and not int8_wanted(settings, "cuda:0")
    settings.planner_int8 = "off"
    assert not int8_wanted(settings, "cpu")


def test_threads_leave_busy_cores_alone() -> None:
    assert auto_threads(cores=2, load=0.1) == 2
    assert auto_threads(cores=2, load=1.2) == 1
    assert auto_threads(cores=2, load=9.0) == 1  # never zero
    assert auto_threads(cores=16, load=3.4) == 13
