"""Weight-only int8 for the built-in planner's language model on a CPU, through PyTorch's own kernel.

Decoding one token reads every weight once, so on a CPU its speed is set by memory bandwidth: int8 weights with
one scale per output row halve the bytes of bf16. `torch._weight_int8pack_mm` multiplies activations by such
weights directly (no dequantized copy). The output layer is quantized too (with tied embeddings it is a third of
the 0.8B model), and the input embedding then reads rows of the same int8 table, so the bf16 table is freed.
The vision tower is left as it is: it runs once per image, not once per token.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_BLOCK = 8192  # rows quantized at a time


@cache
def _types() -> dict[str, Any]:
    """The module classes, defined on first use (torch is imported only when the planner loads)."""
    import torch

    class Int8Linear(torch.nn.Module):
        """A linear layer with int8 weights and one scale per output feature (symmetric, per row)."""

        def __init__(
            self, weight: torch.Tensor, bias: torch.Tensor | None, table: tuple[Any, Any] | None = None
        ) -> None:
            super().__init__()
            rows, scales = table if table is not None else quantize_rows(weight)
            self.in_features, self.out_features = int(weight.shape[1]), int(weight.shape[0])
            self.weight_int8: torch.Tensor
            self.scales: torch.Tensor
            self.register_buffer("weight_int8", rows)
            self.register_buffer("scales", scales.to(_compute_dtype(weight.dtype)))
            self.bias = None if bias is None else torch.nn.Parameter(bias.detach(), requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """x @ W.T (+ bias), W read as int8 rows times their scales."""
            shape = x.shape
            dtype = _compute_dtype(x.dtype)
            flat = x.reshape(-1, shape[-1]).to(dtype).contiguous()
            scales = self.scales if self.scales.dtype == dtype else self.scales.to(dtype)
            out = torch._weight_int8pack_mm(flat, self.weight_int8, scales)  # noqa: SLF001 (PyTorch's int8 kernel has no public name)
            if self.bias is not None:
                out = out + self.bias.to(dtype)
            return out.to(x.dtype).reshape(*shape[:-1], self.out_features)

    class Int8Embedding(torch.nn.Module):
        """An embedding that reads rows of an int8 table (shared with the output layer) and scales them."""

        def __init__(
            self, rows: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype, padding_idx: int | None
        ) -> None:
            super().__init__()
            self.weight_int8, self.scales, self.dtype, self.padding_idx = rows, scales, dtype, padding_idx

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            """The rows of `ids`, dequantized."""
            picked = torch.nn.functional.embedding(ids, self.weight_int8).to(self.dtype)
            return picked * self.scales[ids].to(self.dtype).unsqueeze(-1)

    return {"Int8Linear": Int8Linear, "Int8Embedding": Int8Embedding}


def __getattr__(name: str) -> Any:
    if name in ("Int8Linear", "Int8Embedding"):
        return _types()[name]
    raise AttributeError(name)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    import torch

    # PyTorch's CPU kernel is fast with 16-bit activations and ~100x slower with float32 ones (measured on the
    # layer shapes here): float32 inputs are multiplied in bfloat16 and the result cast back.
    return dtype if dtype in (torch.bfloat16, torch.float16) else torch.bfloat16


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 rows, one float32 scale per row) with the largest magnitude of each row mapped to 127.

    In blocks of rows: the output layer of the 0.8B is 248k x 1024, and float32 temporaries of all of it at once
    would add gigabytes to the peak memory of loading.
    """
    import torch

    rows = torch.empty(weight.shape, dtype=torch.int8)
    scales = torch.empty(weight.shape[0], dtype=torch.float32)
    for start in range(0, weight.shape[0], _BLOCK):
        w = weight[start : start + _BLOCK].detach().float()
        scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-12)
        rows[start : start + _BLOCK] = torch.round(w / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8)
        scales[start : start + _BLOCK] = scale
    return rows, scales


def quantized(model: Any) -> bool:
    """True once the planner's output layer has int8 weights (quantize_planner ran on it)."""
    return type(getattr(model, "lm_head", None)).__name__ == "Int8Linear"


def int8_wanted(settings: Any, device: Any) -> bool:
    """The `planner_int8` setting: auto (on a CPU only), on (a CPU only: the kernel is a CPU one), off."""
    import torch

    mode = getattr(settings, "planner_int8", "auto")
    return mode != "off" and str(device).startswith("cpu") and hasattr(torch, "_weight_int8pack_mm")


def quantize_planner(model: Any) -> int:
    """Replace the language model's linear layers and output layer with int8 ones in place; returns how many."""
    import torch

    types = _types()
    Int8Linear, Int8Embedding = types["Int8Linear"], types["Int8Embedding"]
    language = model.model.language_model
    count = 0
    for parent in list(language.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, Int8Linear(child.weight, child.bias))
                count += 1
    head = model.lm_head
    if type(head) is torch.nn.Linear:
        embed = language.embed_tokens
        tied = isinstance(embed, torch.nn.Embedding) and embed.weight.data_ptr() == head.weight.data_ptr()
        table = quantize_rows(head.weight)
        dtype = head.weight.dtype
        model.lm_head = Int8Linear(head.weight, head.bias, table)
        count += 1
        if tied:
            # One int8 table for both ends; the float one goes with the last reference to it.
            language.embed_tokens = Int8Embedding(
                model.lm_head.weight_int8, model.lm_head.scales, dtype, embed.padding_idx
            )
    return count
