"""The built-in planner's prompt as tokens: the chat template rendered, the system block split off (the prefix
cache holds it), images as pixels with their M-RoPE positions, and where the generation prompt starts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from vchat.llm.base import Message
from vchat.llm.local_tools import template_calls

# Any two different user texts: the template output they share is the part of the prompt before the first user
# message, i.e. the system block; that prefix is what the cache holds.
_PROBES = ("1", "2")
ASSISTANT = "<|im_start|>assistant\n"


@dataclass
class Prompt:
    """One request, tokenized."""

    prefix_text: str
    prefix_ids: Any  # LongTensor [1, P]
    ids: Any  # LongTensor [1, L]: prefix + suffix
    positions: Any  # LongTensor [4, 1, L]: text position, then the three M-RoPE axes
    delta: int  # M-RoPE offset of positions after the images
    vision: dict[str, Any] = field(default_factory=dict)  # pixel_values, image_grid_thw for the suffix
    # Tokens before the generation prompt (`<|im_start|>assistant\n` included): the next step of the turn
    # renders the same tokens, then this reply, so the state after them is worth keeping.
    head: int = 0
    image_starts: list[int] = field(default_factory=list)  # token index of each image's first pad token

    def vision_from(self, start: int) -> dict[str, Any]:
        """Pixels and grids of the images at or after token `start` (those a prefill from there must embed)."""
        if not self.vision:
            return {}
        grids = self.vision["image_grid_thw"]
        skip = sum(1 for at in self.image_starts if at < start)
        if skip == 0:
            return self.vision
        if skip >= grids.shape[0]:
            return {}
        rows = int(sum(int(t) * int(h) * int(w) for t, h, w in grids[:skip].tolist()))
        return {"pixel_values": self.vision["pixel_values"][rows:], "image_grid_thw": grids[skip:]}


class PromptEncoder:
    """Renders and tokenizes requests; remembers the system block's text per system prompt."""

    def __init__(self) -> None:
        self._probe_text: dict[str, str] = {}

    def encode(
        self,
        model: Any,
        processor: Any,
        device: Any,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
    ) -> Prompt:
        """The request's tokens, positions and pixels, and where its system block and generation prompt are."""
        import torch

        from vchat.llm.pixels import template_messages

        chat, images = template_messages(messages)
        if tools:
            chat = template_calls(messages, chat)
        render = processor.apply_chat_template
        text = render(chat, tools=tools or None, tokenize=False, add_generation_prompt=True, enable_thinking=False)
        prefix = ""
        if chat and chat[0]["role"] == "system":
            prefix = self.system_block(processor, chat[0], tools)
            if not text.startswith(prefix):
                prefix = ""
        tokenizer = processor.tokenizer
        prefix_ids = tokenizer(prefix, add_special_tokens=False, return_tensors="pt")["input_ids"]
        suffix = processor(text=[text[len(prefix) :]], images=images or None, return_tensors="pt")
        ids = torch.cat([prefix_ids, suffix["input_ids"]], dim=1)
        length = ids.shape[1]
        at = text.rfind(ASSISTANT)
        tail = text[at + len(ASSISTANT) :] if at >= len(prefix) else ""
        tail_ids = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail else []
        text_pos = torch.arange(length).view(1, 1, length)
        vision: dict[str, Any] = {}
        delta = 0
        starts: list[int] = []
        if images:
            # M-RoPE: image tokens get 2-D positions; computed over the whole sequence, then sliced per forward.
            kinds = torch.cat([torch.zeros_like(prefix_ids), suffix["mm_token_type_ids"]], dim=1)
            axes, deltas = model.model.get_rope_index(
                ids, mm_token_type_ids=kinds, image_grid_thw=suffix["image_grid_thw"]
            )
            delta = int(deltas.view(-1)[0])
            dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
            vision = {
                "pixel_values": suffix["pixel_values"].to(device, dtype),
                "image_grid_thw": suffix["image_grid_thw"].to(device),
            }
            flags = kinds[0].tolist()
            starts = [i for i, kind in enumerate(flags) if kind and (i == 0 or not flags[i - 1])]
        else:
            axes = text_pos.expand(3, 1, length)
        positions = torch.cat([text_pos, axes.to(text_pos.dtype)], dim=0)
        head = length
        if at >= len(prefix) and ids[0, length - len(tail_ids) :].tolist() == list(tail_ids):
            head = length - len(tail_ids)  # else the tail merged into the tokens before it: no split point
        return Prompt(prefix, prefix_ids.to(device), ids.to(device), positions.to(device), delta, vision, head, starts)

    def system_block(self, processor: Any, system: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> str:
        """The template's text before the first user message (the tools are written there too)."""
        content = str(system["content"]) + (json.dumps(tools, sort_keys=True) if tools else "")
        cached = self._probe_text.get(content)
        if cached is None:
            a, b = (
                processor.apply_chat_template(
                    [system, {"role": "user", "content": probe}],
                    tools=tools or None,
                    tokenize=False,
                    add_generation_prompt=False,
                )
                for probe in _PROBES
            )
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            cached = a[:n]
            self._probe_text = {content: cached}
        return cached
