"""A real in-process turn: a tiny Qwen3.5 overfitted here (fixed seed, CPU) so that greedy decoding emits a
given ReAct reply; the agent runs the tool it names and finishes the turn. No scripted backend in this path."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps
from tests.zoo import planner_config, planner_processor, planner_tokenizer

from helpers import write_photo
from vchat.chat import prompts
from vchat.config import Settings
from vchat.llm.base import Message
from vchat.llm.local import KEYS, LocalLLM
from vchat.llm.select import select_llm
from vchat.session import Session
from vchat.tools.transform import FlipImage

CALL = 'Thought: Do I need to use a tool? Yes\nAction: flip_image\nAction Input: {"image": "img1"}'
DONE = "Thought: Do I need to use a tool? No\nAI: Here it is flipped, img2."


# Tiny models: one torch thread (see conftest).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _planner_folder(folder: Path) -> Path:
    import torch
    from transformers import Qwen3_5ForConditionalGeneration

    # The tokenizer learns this prompt's words, so the sequences stay short and training fast.
    corpus = (prompts.system_prompt([FlipImage], vision=True), CALL, DONE, "flip the image", "Observation: New image")
    tokenizer = planner_tokenizer(corpus, vocab_size=900)
    torch.manual_seed(0)
    model = Qwen3_5ForConditionalGeneration(planner_config(tokenizer, layers=2, init_std=0.02))
    model.save_pretrained(folder)
    planner_processor(tokenizer).save_pretrained(folder)
    return folder


class Recorder:
    """Keeps the messages (and, for native calls, the tools) of every call the agent makes; the real planner answers."""

    def __init__(self, llm: LocalLLM, method: str) -> None:
        self.original = getattr(llm, method)
        self.calls: list[tuple[list[Message], Any]] = []

    def __call__(self, messages: Sequence[Message], *args: Any, **kwargs: Any) -> Iterator[Any]:
        # The rest: the stop strings for `complete`, the tool specs for `complete_with_tools`.
        extra = args[0] if args else next(iter(kwargs.values()), None)
        self.calls.append((list(messages), extra))
        return self.original(messages, *args, **kwargs)  # type: ignore[no-any-return]


def _turn(
    settings: Settings, llm: LocalLLM, photo: Path, method: str = "complete"
) -> tuple[list[Any], list[tuple[list[Message], Any]]]:
    """One turn in a fresh session with a fixed id, so every run sends byte-identical messages.

    `method`: the planner method the agent calls (`complete`, or `complete_with_tools` with protocol = tools).
    """
    shutil.rmtree(settings.out_dir, ignore_errors=True)
    recorder = Recorder(llm, method)
    setattr(llm, method, recorder)
    try:
        # The same runtime every time: the weights trained in place are the ones the planner uses.
        session = Session(settings, [FlipImage()], llm, session_id="e2e", models=llm.manager)
        session.attach(photo)
        steps = list(session.turn("flip the image"))
        session.close()
    finally:
        delattr(llm, method)  # back to the class's method
    return steps, recorder.calls


def _overfit(
    llm: LocalLLM,
    examples: list[tuple[list[Message], str]],
    max_steps: int = 400,
    tools: list[dict[str, Any]] | None = None,
) -> int:
    """Train the runtime's own planner object in place until teacher-forced argmax reproduces every reply.

    `tools`: the native tool specs the prompts were rendered with (`protocol = "tools"`), else None.
    """
    import torch

    with llm.manager.use(*KEYS, tool="planner") as parts:
        model, processor = parts["planner"], parts["planner.processor"]
        end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        batches = []
        for messages, reply in examples:
            prompt = llm._encode(model, processor, torch.device("cpu"), messages, tools)
            target = processor.tokenizer(reply, add_special_tokens=False, return_tensors="pt")["input_ids"][0].tolist()
            target = torch.tensor([[*target, end]])
            ids = torch.cat([prompt.ids, target], dim=1)
            start, length = prompt.ids.shape[1], ids.shape[1]
            after = torch.arange(start, length).view(1, 1, -1)
            positions = torch.cat([prompt.positions, torch.cat([after, after.expand(3, 1, -1) + prompt.delta])], dim=2)
            batches.append((ids, positions, prompt.vision, start))
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        torch.manual_seed(0)
        exact, steps = False, 0
        while not exact and steps < max_steps:
            exact = True
            optimizer.zero_grad()
            for ids, positions, vision, start in batches:
                logits = model(input_ids=ids, position_ids=positions, **vision).logits[0, start - 1 : -1]
                goal = ids[0, start:]
                torch.nn.functional.cross_entropy(logits, goal).backward()
                top2 = logits.topk(2, dim=-1)
                # Exact with a margin, so the cached (copied-prefix) decoding cannot flip a token.
                exact &= bool((top2.indices[:, 0] == goal).all()) and bool(
                    (top2.values[:, 0] - top2.values[:, 1]).min() > 1
                )
            if not exact:
                optimizer.step()
                steps += 1
    assert exact, f"the tiny planner did not learn its replies in {max_steps} steps"
    llm.reset_cache()
    return steps


@pytest.mark.slow
def test_a_real_in_process_turn_runs_the_tool_and_finishes(tmp_path: Path) -> None:
    folder = _planner_folder(tmp_path / "planner")
    settings = Settings(out_dir=tmp_path / "out", llm=f"local:{folder}", max_tokens=48, max_format_retries=0)
    settings.runtime.device, settings.runtime.dtype = "cpu", "float32"
    settings.planner_int8 = "off"  # trained in place below: float weights (tests/test_llm_speed.py tries int8)
    llm = select_llm(settings)
    assert isinstance(llm, LocalLLM)
    photo = write_photo(tmp_path, width=64, height=48)

    # Learn the first reply for the messages the agent really sends (with the photo as pixels)…
    _, calls = _turn(settings, llm, photo)
    first = calls[0][0]
    assert any(isinstance(m["content"], list) for m in first)  # vision on: the photo travels as pixels
    _overfit(llm, [(first, CALL)])
    # …then the second, for the messages after the tool really ran (its result shown as pixels too).
    steps, calls = _turn(settings, llm, photo)
    assert [s.kind for s in steps][:2] == ["action", "observation"]
    second = calls[1][0]
    _overfit(llm, [(first, CALL), (second, DONE)])

    steps, calls = _turn(settings, llm, photo)
    assert [s.kind for s in steps] == ["action", "observation", "final"]
    assert steps[0].tool == "flip_image" and steps[2].text == "Here it is flipped, img2."
    (made,) = steps[1].images
    with Image.open(photo) as original, Image.open(made.path) as flipped:
        assert flipped.convert("RGB").tobytes() == ImageOps.mirror(original.convert("RGB")).tobytes()
    assert llm.last.cached_tokens > 0  # the second step reused the system prompt's state
