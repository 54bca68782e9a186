"""The built-in planner: a small vision-language model (Qwen3.5) run in-process as one more runtime component.

The model and its processor are the runtime's `planner` and `planner.processor` components: loaded lazily,
counted in the same memory budget as the visual tools, moved off the accelerator when a diffusion tool needs the
room (LRU) and brought back for the next reply; never a second copy. Each reply is one locked `use()` of them.

Decoding is a plain token loop (no background thread): one forward per token, so a stop string, the token cap
or a cancelled turn ends the reply within one token. The system prompt is byte-stable across a session, so its
state (KV for the attention layers, recurrent state for the linear ones) is computed once and every step starts
from a deep copy of it, prefilling only what is new; within a turn the state after the previous step's prompt is
kept too (llm/local_state.py). That state is attached to the `planner` component in the runtime, so it counts
against the same budget as the weights and is freed when they move to another device. A ReAct reply is decoded
under a grammar built from the tools and images of the session (llm/grammar.py, llm/constrain.py), and the
tokens the grammar forces are appended in one forward pass (llm/local_decode.py). When the model loads, the
one-token paths of vchat.llm.qwen_kernels replace transformers' slow reference code for the linear-attention
layers (same results), and on a CPU its linear layers get int8 weights (llm/int8.py).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vchat.errors import Cancelled, LLMError, ModelLoadError
from vchat.llm.base import LLM, Message, ToolCalls
from vchat.llm.local_decode import DecodeStats, Sampler, decode, end_ids
from vchat.llm.local_prompt import Prompt, PromptEncoder
from vchat.llm.local_state import PlannerState
from vchat.llm.local_tools import CallSplitter
from vchat.llm.reply_spec import ReplySpec

if TYPE_CHECKING:
    from vchat.config import Settings
    from vchat.runtime.manager import ModelManager

KEYS = ("planner", "planner.processor")
_KERNELS_FOR: weakref.WeakSet[Any] = weakref.WeakSet()  # models vchat's decode kernels were installed for


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
    sampled: int = 0  # new tokens the sampler picked
    forced: int = 0  # new tokens the grammar forced (appended without sampling)
    forwards: int = 0  # forward passes while decoding
    constrained: bool = False  # decoded under the reply grammar


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
        self._prompts = PromptEncoder()
        self._state = PlannerState(self._attach_state, self._detach_state)
        # The shape the next ReAct reply must have (given by the agent before each request; used once).
        self._spec: ReplySpec | None = None
        self.constrain = settings.constrain  # auto | on | off
        self._kernels_out = False  # vchat's kernels were taken out for a reference run
        self.fast_forward = True  # append forced tokens in one forward pass (off: one forward each, same tokens)
        self.last_decode = DecodeStats()
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

    # -- kept state --------------------------------------------------------------------------

    @property
    def use_prefix_cache(self) -> bool:
        """Start each step from the system prompt's state (off: prefill everything, for comparisons)."""
        return self._state.use_prefix

    @use_prefix_cache.setter
    def use_prefix_cache(self, on: bool) -> None:
        self._state.use_prefix = on

    @property
    def use_turn_cache(self) -> bool:
        """Start each step from the previous step's state when the request extends it (off: for comparisons)."""
        return self._state.use_turn

    @use_turn_cache.setter
    def use_turn_cache(self, on: bool) -> None:
        self._state.use_turn = on
        if not on:
            self._state.forget()

    @property
    def _prefix_cache(self) -> Any:
        """The system prompt's state, if built (the tests look at its size)."""
        return self._state.prefix_cache

    def held_state(self) -> list[Any]:
        """Every cache kept between replies (system prompt, last step)."""
        return self._state.held()

    def reset_cache(self) -> None:
        """Forget the kept state (after the weights changed in place, e.g. fine-tuning in a test or a benchmark)."""
        self._state.reset()

    def _attach_state(self, nbytes: int, release: Any) -> None:
        self.manager.attach_state("planner", nbytes, release)

    def _detach_state(self) -> None:
        if self._manager is not None:
            self._manager.detach_state("planner")

    def expect(self, spec: ReplySpec) -> None:
        """The tools and images the next ReAct reply may name: it is decoded under their grammar (llm/grammar.py)."""
        self._spec = spec

    # -- the LLM protocol --------------------------------------------------------------------

    def complete(self, messages: Sequence[Message], stop: Sequence[str] | None = None) -> Iterator[str]:
        """Stream the reply token by token, cut at the first stop string, at most `max_tokens` new tokens."""
        self.last_finish = None
        spec, self._spec = self._spec, None  # a spec is for one reply
        return self._reply(list(messages), [s for s in (stop or ()) if s], spec=spec)

    def complete_with_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> Iterator[str | ToolCalls]:
        """Native tool calls: the tools rendered by the model's chat template, its `<tool_call>` blocks read back."""
        self.last_finish = None
        spec, self._spec = self._spec, None  # a spec is for one reply
        return self._tool_reply(list(messages), list(tools), spec)

    def _tool_reply(
        self, messages: list[Message], tools: list[dict[str, Any]], spec: ReplySpec | None = None
    ) -> Iterator[str | ToolCalls]:
        splitter = CallSplitter()  # text streams as it comes; the calls after it are held back and parsed
        for piece in self._reply(messages, [], tools, spec):
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
        self,
        messages: list[Message],
        stops: list[str],
        tools: list[dict[str, Any]] | None = None,
        spec: ReplySpec | None = None,
    ) -> Iterator[str]:
        try:
            with self.manager.use(*KEYS, tool="planner") as parts:
                model, processor = parts["planner"], parts["planner.processor"]
                device = parts.device_of("planner")
                self._prepare(model, device)
                from vchat.llm.threads import planner_threads

                with planner_threads(self.settings, device):
                    yield from self._generate(model, processor, device, messages, stops, tools, spec)
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

    def _prepare(self, model: Any, device: Any) -> None:
        """Once per loaded model object: vchat's decode kernels, and int8 weights on a CPU."""
        from vchat.llm import qwen_kernels

        if not self.fast_kernels:
            qwen_kernels.uninstall()  # the benchmark's and a test's side-by-side reference run
            self._kernels_out = True
            return
        if self._kernels_out:
            qwen_kernels.install()
            self._kernels_out = False
        if model not in _KERNELS_FOR:
            qwen_kernels.install()
            _KERNELS_FOR.add(model)
        from vchat.llm.int8 import int8_wanted, quantize_planner, quantized

        if int8_wanted(self.settings, device) and not quantized(model):
            quantize_planner(model)
            self.reset_cache()  # any kept state came from the float weights

    # -- prompt and decoding -----------------------------------------------------------------

    def _encode(
        self,
        model: Any,
        processor: Any,
        device: Any,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
    ) -> Prompt:
        return self._prompts.encode(model, processor, device, messages, tools)

    def _generate(
        self,
        model: Any,
        processor: Any,
        device: Any,
        messages: list[Message],
        stops: list[str],
        tools: list[dict[str, Any]] | None = None,
        spec: ReplySpec | None = None,
    ) -> Iterator[str]:
        import torch

        started = time.perf_counter()
        self.last = ReplyStats()
        prompt = self._encode(model, processor, device, messages, tools)
        # A stale offset from another call would shift every position (the notes' "stale rope_deltas").
        model.model.rope_deltas = None
        cache, cached, built = self._state.start(model, prompt, device)
        length = prompt.ids.shape[1]
        self.last.prompt_tokens, self.last.cached_tokens, self.last.prefix_built = length, cached, built
        self.last.images = int(prompt.vision["image_grid_thw"].shape[0]) if prompt.vision else 0

        def feed(start: int, end: int) -> Any:
            with torch.inference_mode():
                out = model(
                    input_ids=prompt.ids[:, start:end],
                    position_ids=prompt.positions[:, :, start:end],
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                    **prompt.vision_from(start),
                )
            return out.logits[:, -1, :]

        # Up to the generation prompt first: the state there is what the next step of this turn starts from.
        head, start = min(max(prompt.head, cached), length), cached
        logits = None
        if cached < head:
            logits = feed(cached, head)
            self._state.keep_turn(model, device, prompt.ids[:, :head], cache)
            start = head
        if start < length:  # always true when nothing was fed yet: a kept state never covers a whole request
            logits = feed(start, length)
        position = length

        def forward(tokens: list[int]) -> Any:
            nonlocal position
            count = len(tokens)
            step = torch.tensor([tokens], device=device)
            at = torch.arange(position, position + count, device=device)
            pos = torch.stack([at, at + prompt.delta, at + prompt.delta, at + prompt.delta]).view(4, 1, count)
            with torch.inference_mode():
                out = model(input_ids=step, position_ids=pos, cache=cache, use_cache=True, logits_to_keep=1)
            position += count
            return out.logits[:, -1, :]

        assert logits is not None
        from vchat.llm.constrain import for_reply

        constraint = for_reply(processor.tokenizer, int(logits.shape[-1]), spec, tools, self.constrain, self.max_tokens)
        stats = DecodeStats()
        self.last_decode = stats
        self.last.constrained = constraint is not None
        deadline = started + self.settings.reply_deadline
        try:
            yield from decode(
                logits,
                forward,
                tokenizer=processor.tokenizer,
                ends=end_ids(processor.tokenizer, model),
                sampler=Sampler(self.temperature, self.top_p),
                stops=stops,
                max_tokens=self.max_tokens,
                constraint=constraint,
                fast_forward=self.fast_forward,
                cancelled=self._cancelled,
                deadline=deadline,
                started=started,
                stats=stats,
            )
        except LLMError:
            raise LLMError(
                f"built-in planner: the reply took longer than reply_deadline ({self.settings.reply_deadline:g}s)"
            ) from None
        finally:
            self.last_finish = stats.finish
            self.last.new_tokens, self.last.first_token_s = stats.new_tokens, stats.first_token_s
            self.last.sampled, self.last.forced, self.last.forwards = stats.sampled, stats.forced, stats.forwards
            self.last.total_s = time.perf_counter() - started
