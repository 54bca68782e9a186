"""The built-in planner: a small vision-language model (Qwen3.5) run in-process as one more runtime component.

The model and its processor are the runtime's `planner` and `planner.processor` components: loaded lazily,
counted in the same memory budget as the visual tools, moved off the accelerator when a diffusion tool needs the
room (LRU) and brought back for the next reply; never a second copy. Each reply is one locked `use()` of them.

Decoding is a plain token loop (no background thread): one forward per token, so a stop string, the token cap
or a cancelled turn ends the reply within one token. The system prompt is byte-stable across a session, so its
state (KV for the attention layers, recurrent state for the linear ones) is computed once and every step starts
from a deep copy of it, prefilling only what is new. That state is attached to the `planner` component in the
runtime, so it counts against the same budget as the weights and is freed when they move to another device.
Where transformers would decode the linear-attention layers with its slow reference code (no GPU packages), the
one-token paths of vchat.llm.qwen_kernels are used instead (same results).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vchat.errors import Cancelled, LLMError, ModelLoadError
from vchat.llm.base import LLM, Message, ToolCalls
from vchat.llm.local_tools import CallSplitter, template_calls

if TYPE_CHECKING:
    from vchat.config import Settings
    from vchat.runtime.manager import ModelManager

KEYS = ("planner", "planner.processor")
# Any two different user texts: the template output they share is the part of the prompt before the first user
# message, i.e. the system block; that prefix is what the cache holds.
_PROBES = ("1", "2")


@dataclass
class ReplyStats:
    """What the last reply cost (for the benchmark and `--verbose`)."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens taken from the prefix cache instead of prefilled
    new_tokens: int = 0
    images: int = 0
    first_token_s: float = 0.0  # from the call to the first generated token (prefill included)
    total_s: float = 0.0
    prefix_built: bool = False  # this reply computed the prefix cache


@dataclass
class _Prompt:
    prefix_text: str
    prefix_ids: Any  # LongTensor [1, P]
    ids: Any  # LongTensor [1, L]: prefix + suffix
    positions: Any  # LongTensor [4, 1, L]: text position, then the three M-RoPE axes
    delta: int  # M-RoPE offset of positions after the images
    vision: dict[str, Any] = field(default_factory=dict)  # pixel_values, image_grid_thw for the suffix


class LocalLLM(LLM):
    """A chat model run in-process through the model runtime; implements the LLM protocol."""

    supports_vision = True
    supports_tools = True
    max_tokens: int

    def __init__(
        self, settings: Settings, *, models: Callable[[], ModelManager] | None = None, picked: bool = False
    ) -> None:
        self.settings = settings
        self.picked = picked  # chosen automatically (no key, no server): the first use says so
        self.max_tokens = settings.max_tokens
        self.temperature = settings.temperature
        self.top_p = settings.top_p
        self._models = models
        self._manager: ModelManager | None = None
        self._cancelled: Callable[[], bool] = lambda: False
        # (prefix text, model object id, device, dtype) -> cache holding the state after the prefix.
        self._prefix_key: tuple[Any, ...] | None = None
        self._prefix_cache: Any = None
        self._probe_text: dict[str, str] = {}
        self.use_prefix_cache = True
        # vchat's one-token decode paths for the linear-attention layers (vchat.llm.qwen_kernels); the benchmark
        # turns them off to measure transformers' reference code side by side. Same results either way.
        self.fast_kernels = True
        self.last = ReplyStats()
        # Why the last reply ended: "stop" (end token or stop string) or "length" (cut at max_tokens).
        self.last_finish: str | None = None

    # -- wiring ------------------------------------------------------------------------------

    def bind_runtime(self, models: Callable[[], ModelManager], cancelled: Callable[[], bool] | None = None) -> None:
        """Use the session's model runtime (one budget, one copy) and its cancel flag."""
        self._models = models
        self._manager = None
        if cancelled is not None:
            self._cancelled = cancelled

    @property
    def manager(self) -> ModelManager:
        """The runtime the planner lives in; a private one from the settings when no session bound one."""
        if self._manager is None:
            if self._models is not None:
                manager = self._models()
            else:
                from vchat.runtime import ModelManager

                manager = ModelManager.from_settings(self.settings)
            if "planner" not in manager.models:
                from vchat.runtime.catalog import planner_default

                # Decided here, where the device is known: the 2B on a GPU or MPS, the 0.8B on CPU.
                manager.models["planner"] = planner_default(manager.device)
            self._manager = manager
        return self._manager

    @property
    def ref(self) -> str:
        """The hub id or folder the planner loads from."""
        return self.manager.models["planner"]

    @property
    def name(self) -> str:
        """`Qwen/Qwen3.5-0.8B (built-in)`."""
        return f"{self.ref} (built-in)"

    def notice(self) -> str | None:
        """Said once when a session starts: the first-use line, and on a GPU a missing fast-kernel package."""
        from vchat.llm.qwen_kernels import gpu_hint

        lines = [line for line in (self._first_use(), gpu_hint(str(self.manager.device))) if line]
        return "\n".join(lines) or None

    def _first_use(self) -> str | None:
        """One line for the first use of an automatically chosen planner (model, download size, how to change)."""
        if not self.picked:
            return None
        from vchat.runtime import hub
        from vchat.runtime.catalog import DOWNLOAD_SIZES, component

        manager = self.manager
        missing = [
            key for key in KEYS if hub.find_files(component(key), hub.source_for(component(key), manager.models))[1]
        ]
        if not missing:
            return None
        size = DOWNLOAD_SIZES.get(self.ref)
        download = f"a {size} download on first use" if size else "downloaded on first use"
        return (
            f"no API key or local server found: using the built-in planner {self.ref} ({download}); "
            "set OPENAI_API_KEY, start a local server, or pass --llm local:ID_OR_FOLDER to use another"
        )

    def __repr__(self) -> str:
        return f"LocalLLM({self.settings.models.get('planner') or 'default'!r})"

    def reset_cache(self) -> None:
        """Forget the prefix state (after the weights changed in place, e.g. fine-tuning in a test or a benchmark)."""
        if self._manager is not None:
            self._manager.detach_state("planner")
        self._forget_prefix()

    def _forget_prefix(self) -> None:
        # Called by the runtime when the weights move (the state lives on their device) or are dropped.
        self._prefix_key, self._prefix_cache = None, None

    # -- the LLM protocol --------------------------------------------------------------------

    def complete(self, messages: Sequence[Message], stop: Sequence[str] | None = None) -> Iterator[str]:
        """Stream the reply token by token, cut at the first stop string, at most `max_tokens` new tokens."""
        self.last_finish = None
        return self._reply(list(messages), [s for s in (stop or ()) if s])

    def complete_with_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> Iterator[str | ToolCalls]:
        """Native tool calls: the tools rendered by the model's chat template, its `<tool_call>` blocks read back."""
        self.last_finish = None
        return self._tool_reply(list(messages), list(tools))

    def _tool_reply(self, messages: list[Message], tools: list[dict[str, Any]]) -> Iterator[str | ToolCalls]:
        splitter = CallSplitter()  # text streams as it comes; the calls after it are held back and parsed
        for piece in self._reply(messages, [], tools):
            text = splitter.feed(piece)
            if text:
                yield text
        tail = splitter.flush()
        if tail:
            yield tail
        calls = splitter.calls()
        if calls:
            yield ToolCalls(tuple(calls))

    def _reply(
        self, messages: list[Message], stops: list[str], tools: list[dict[str, Any]] | None = None
    ) -> Iterator[str]:
        try:
            with self.manager.use(*KEYS, tool="planner") as parts:
                model, processor = parts["planner"], parts["planner.processor"]
                from vchat.llm import qwen_kernels

                if self.fast_kernels:
                    qwen_kernels.install()
                else:
                    qwen_kernels.uninstall()
                yield from self._generate(model, processor, parts.device_of("planner"), messages, stops, tools)
        except (Cancelled, KeyboardInterrupt, GeneratorExit, LLMError):
            raise
        except ModelLoadError as exc:
            raise LLMError(f"built-in planner: {exc}") from None
        except Exception as exc:
            from vchat.runtime.devices import is_oom

            if is_oom(exc):
                raise LLMError(
                    "built-in planner ran out of memory; lower max_tokens, or use a smaller [models] planner"
                ) from None
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise LLMError(f"built-in planner failed: {type(exc).__name__}{': ' + detail if detail else ''}") from None

    # -- prompt ------------------------------------------------------------------------------

    def _encode(
        self,
        model: Any,
        processor: Any,
        device: Any,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
    ) -> _Prompt:
        import torch

        from vchat.llm.pixels import template_messages

        chat, images = template_messages(messages)
        if tools:
            chat = template_calls(messages, chat)
        render = processor.apply_chat_template
        text = render(chat, tools=tools or None, tokenize=False, add_generation_prompt=True, enable_thinking=False)
        prefix = ""
        if chat and chat[0]["role"] == "system":
            prefix = self._system_block(processor, chat[0], tools)
            if not text.startswith(prefix):
                prefix = ""
        tokenizer = processor.tokenizer
        prefix_ids = tokenizer(prefix, add_special_tokens=False, return_tensors="pt")["input_ids"]
        suffix = processor(text=[text[len(prefix) :]], images=images or None, return_tensors="pt")
        ids = torch.cat([prefix_ids, suffix["input_ids"]], dim=1)
        length = ids.shape[1]
        text_pos = torch.arange(length).view(1, 1, length)
        vision: dict[str, Any] = {}
        delta = 0
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
        else:
            axes = text_pos.expand(3, 1, length)
        positions = torch.cat([text_pos, axes.to(text_pos.dtype)], dim=0)
        return _Prompt(prefix, prefix_ids.to(device), ids.to(device), positions.to(device), delta, vision)

    def _system_block(self, processor: Any, system: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> str:
        # The template writes the tools into the system block, so they are part of the cached prefix.
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

    # -- decoding ----------------------------------------------------------------------------

    def _prefix_state(self, model: Any, prompt: _Prompt, device: Any) -> tuple[Any, int]:
        """A fresh cache holding the prefix (a deep copy of the shared one), and how many tokens it covers."""
        import torch
        from transformers import DynamicCache

        size = prompt.prefix_ids.shape[1]
        if not self.use_prefix_cache or size == 0:
            return DynamicCache(config=model.config), 0
        dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
        key = (prompt.prefix_text, id(model), str(device), str(dtype))
        if self._prefix_key != key:
            self.reset_cache()  # free the old state before building the new one
            cache = DynamicCache(config=model.config)
            with torch.inference_mode():
                model(
                    input_ids=prompt.prefix_ids,
                    position_ids=prompt.positions[:, :, :size],
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
            self._prefix_key, self._prefix_cache = key, cache
            self.last.prefix_built = True
            # Counted in the runtime's budget beside the weights, and freed when they move off this device.
            from vchat.runtime.memory import state_bytes

            self.manager.attach_state("planner", state_bytes(cache), self._forget_prefix)
        # The linear-attention state is updated in place and cannot be cropped: every step needs its own copy.
        with torch.inference_mode():
            return copy.deepcopy(self._prefix_cache), size

    def _generate(
        self,
        model: Any,
        processor: Any,
        device: Any,
        messages: list[Message],
        stops: list[str],
        tools: list[dict[str, Any]] | None = None,
    ) -> Iterator[str]:
        import torch

        started = time.perf_counter()
        self.last = ReplyStats()
        prompt = self._encode(model, processor, device, messages, tools)
        # A stale offset from another call would shift every position (the notes' "stale rope_deltas").
        model.model.rope_deltas = None
        cache, cached = self._prefix_state(model, prompt, device)
        length = prompt.ids.shape[1]
        self.last.prompt_tokens, self.last.cached_tokens = length, cached
        self.last.images = int(prompt.vision["image_grid_thw"].shape[0]) if prompt.vision else 0
        with torch.inference_mode():
            out = model(
                input_ids=prompt.ids[:, cached:],
                position_ids=prompt.positions[:, :, cached:],
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
                **prompt.vision,
            )
        logits = out.logits[:, -1, :]
        tokenizer = processor.tokenizer
        ends = _end_ids(tokenizer, model)
        sampler = _Sampler(self.temperature, self.top_p)
        text = _Text(tokenizer, stops)
        position = length
        deadline = started + self.settings.reply_deadline
        self.last_finish = "stop"
        for index in range(self.max_tokens):
            if self._cancelled():
                return
            if time.perf_counter() > deadline:
                raise LLMError(
                    f"built-in planner: the reply took longer than reply_deadline ({self.settings.reply_deadline:g}s)"
                )
            token = sampler.pick(logits)
            if index == 0:
                self.last.first_token_s = time.perf_counter() - started
            if token in ends:
                break
            self.last.new_tokens += 1
            piece, hit = text.add(token)
            if piece:
                yield piece
            if hit:
                break
            step = torch.tensor([[token]], device=device)
            pos = torch.tensor([position] + [position + prompt.delta] * 3, device=device).view(4, 1, 1)
            with torch.inference_mode():
                out = model(input_ids=step, position_ids=pos, cache=cache, use_cache=True)
            logits = out.logits[:, -1, :]
            position += 1
        else:
            self.last_finish = "length"  # max_tokens new tokens and no end token: the reply was cut
        tail = text.flush()
        if tail:
            yield tail
        self.last.total_s = time.perf_counter() - started


def _end_ids(tokenizer: Any, model: Any) -> set[int]:
    """Token ids that end a reply: the chat end-of-turn token and whatever the configs call end of sequence."""
    ends: set[int] = set()
    for token in ("<|im_end|>", "<|endoftext|>"):
        found = tokenizer.convert_tokens_to_ids(token)
        if isinstance(found, int) and found != tokenizer.unk_token_id and found >= 0:
            ends.add(found)
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ends.add(source)
        elif isinstance(source, list):
            ends.update(int(i) for i in source)
    return ends


class _Sampler:
    """Greedy at temperature 0 (deterministic); otherwise temperature and nucleus (top-p) sampling."""

    def __init__(self, temperature: float, top_p: float) -> None:
        self.temperature = temperature
        self.top_p = top_p

    def pick(self, logits: Any) -> int:
        import torch

        if self.temperature <= 0:
            return int(logits[0].argmax())
        probs = torch.softmax(logits[0].float() / self.temperature, dim=-1)
        if self.top_p < 1:
            ordered, order = probs.sort(descending=True)
            keep = ordered.cumsum(0) - ordered < self.top_p  # always keeps the most likely token
            probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
        return int(torch.multinomial(probs, 1))


class _Text:
    """Turns tokens into text deltas: whole characters only, cut at the first stop string, holding back only a
    tail that could still become one."""

    def __init__(self, tokenizer: Any, stops: list[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.ids: list[int] = []
        self.sent = 0  # characters of the decoded text already yielded
        self.stopped = False

    def add(self, token: int) -> tuple[str, bool]:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return "", False  # half of a multi-byte character: wait for the rest
        cut = min((i for i in (text.find(s, max(0, self.sent - len(s))) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            piece = text[self.sent : cut]
            self.sent = cut
            self.stopped = True
            return piece, True
        hold = 0
        for n in range(min(len(text) - self.sent, max((len(s) for s in self.stops), default=1) - 1), 0, -1):
            if any(s.startswith(text[-n:]) for s in self.stops):
                hold = n
                break
        end = len(text) - hold
        piece = text[self.sent : end]
        self.sent = max(self.sent, end)
        return piece, False

    def flush(self) -> str:
        """The held-back tail once the reply ended without reaching a stop string."""
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True).rstrip("\ufffd")
        piece = text[self.sent :]
        self.sent = len(text)
        return piece
