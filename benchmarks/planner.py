"""Built-in planner benchmark: load, prefill of the real system prompt, decode speed, and a ReAct step with and
without the prefix cache, on the full-size Qwen3.5 architecture with random weights (speed does not depend on
the values), loaded through vchat's own runtime and decoding loop.

    python benchmarks/planner.py                 # Qwen3.5-0.8B shape, bf16, CPU; medians of --repeats runs
    python benchmarks/planner.py --size 2b       # the 2B shape as well (slow on CPU)
    python benchmarks/planner.py --gpu           # CUDA: the 2B in bf16 sharing a 6 GB budget with SD 1.5

No downloads. The architecture is built from the published config.json shapes (tests/zoo.py PLANNER_SHAPES,
shared with the tests' tiny planner); the tokenizer is a BPE trained here on vchat's own prompt and docs (the
real one cannot be fetched), so token counts are close to, not equal to, Qwen's. Goal from the issue: a step after
the first costs at most 0.3x the first.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

REPLY_TOKENS = 30  # about one ReAct action ("Thought: … Action: … Action Input: {…}") in Qwen's tokens


def _tokenizer() -> Any:
    """A 32k byte-level BPE trained on vchat's prompt and docs, with Qwen's specials (see tests/zoo.py)."""
    from tests.zoo import planner_tokenizer

    from vchat.chat import prompts
    from vchat.tools.base import offered
    from vchat.tools.registry import all_tools

    texts = [prompts.system_prompt(type(t) for t in offered(all_tools()))]
    for path in [ROOT / "README.md", ROOT / "docs" / "ARCHITECTURE.md", *sorted((ROOT / "src").rglob("*.py"))]:
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8"))
    return planner_tokenizer(tuple(texts), vocab_size=32_000)


def write_planner(size: str, folder: Path, device: str = "cpu") -> int:
    """Save a random-weight planner (bf16 safetensors + processor) into folder; returns its parameter count."""
    import torch
    from tests.zoo import planner_config, planner_processor
    from transformers import Qwen3_5ForConditionalGeneration

    tokenizer = _tokenizer()
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3_5ForConditionalGeneration(planner_config(tokenizer, size)).to(torch.bfloat16)
    count = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    del model
    processor = planner_processor(tokenizer)
    processor.image_processor.max_pixels = 448 * 448
    processor.save_pretrained(folder)
    return count


def _messages(turn: int) -> list[Any]:
    """What the agent sends on step 1 of a turn: the real system prompt, one earlier turn, the user's message."""
    from vchat.chat import prompts
    from vchat.tools.base import offered
    from vchat.tools.registry import all_tools

    system = prompts.system_prompt(type(t) for t in offered(all_tools()))
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "make it look like winter\n\n(Images in this session: img1 photo.jpg)"},
        {"role": "assistant", "content": "Thought: Do I need to use a tool? No\nAI: Here it is in winter, img2."},
        {"role": "user", "content": f"now remove the car ({turn})\n\n(Images in this session: img1, img2)"},
    ]


def _step(llm: Any, turn: int) -> tuple[float, float, Any]:
    """One ReAct step: seconds to the first token, seconds in all, and the planner's stats."""
    started = time.perf_counter()
    for _ in llm.complete(_messages(turn), stop=["\nObservation:"]):
        pass
    return llm.last.first_token_s, time.perf_counter() - started, llm.last


def _log(text: str) -> None:
    print(f"    {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


# What a planner writes in a two-step turn (the random weights cannot: a scripted sampler picks these tokens
# wherever the grammar leaves a choice, so the decoding loop, the grammar and the forwards are the real ones).
ACTION = (
    'Thought: Do I need to use a tool? Yes\nAction: instruct_edit\nAction Input: {"image": "img2", '
    '"instruction": "remove the car"}'
)
ANSWER = "Thought: Do I need to use a tool? No\nAI: Here it is without the car, img3."


class ScriptSampler:
    """Picks the next token of a fixed reply (its tokenizer's tokens) whenever the loop samples."""

    def __init__(self, tokenizer: Any, reply: str, llm: Any) -> None:
        self.ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        self.end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.llm = llm

    def pick(self, logits: Any) -> int:
        """The reply's next token, where the grammar allows it."""
        import math

        at = self.llm.last_decode.new_tokens  # the reply's tokens so far, forced ones included
        token = self.ids[at] if at < len(self.ids) else self.end
        if not math.isfinite(float(logits[0, token])):  # the grammar split the text otherwise: follow it
            return int(logits[0].argmax())
        return int(token)


def _turn(llm: Any, constrained: bool, fast_forward: bool) -> tuple[list[float], list[Any]]:
    """Both steps of a turn with scripted replies: seconds per step and the planner's stats per step."""
    from vchat.llm.reply_spec import ReplySpec
    from vchat.tools.base import offered
    from vchat.tools.registry import all_tools

    spec = ReplySpec.of(offered(all_tools()), ["img1", "img2"])
    messages = _messages(5)
    seconds, stats = [], []
    for reply in (ACTION, ANSWER):

        def scripted(reply: str = reply) -> Any:
            return ScriptSampler(llm_tokenizer[0], reply, llm)

        llm.fast_forward = fast_forward
        if constrained:
            llm.expect(spec)
        started = time.perf_counter()
        local_decode_sampler[0] = scripted
        for _ in llm.complete(messages, stop=["\nObservation:"]):
            pass
        seconds.append(time.perf_counter() - started)
        stats.append(llm.last)
        local_decode_sampler[0] = None
        messages = [
            *messages,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": "Observation: New image img3."},
        ]
    return seconds, stats


llm_tokenizer: list[Any] = [None]
local_decode_sampler: list[Any] = [None]


def cpu_run(size: str, folder: Path) -> dict[str, float]:
    """One measurement in this process: bf16 and default decode speed, then a two-step turn under each setting."""
    import torch

    from vchat.config import Settings
    from vchat.llm import local as local_module
    from vchat.llm.local import KEYS, LocalLLM
    from vchat.llm.threads import auto_threads

    settings = Settings(max_tokens=96)
    settings.models["planner"] = str(folder)
    settings.runtime.device, settings.runtime.dtype = "cpu", "bfloat16"
    settings.planner_int8 = "off"
    llm = LocalLLM(settings)
    started = time.perf_counter()
    with llm.manager.use(*KEYS, tool="planner") as parts:
        model, processor = parts["planner"], parts["planner.processor"]
    llm_tokenizer[0] = processor.tokenizer
    load = time.perf_counter() - started
    threads = auto_threads()
    torch.set_num_threads(threads)
    _log(f"loaded in {load:.1f} s; {threads} threads (load {__import__('os').getloadavg()[0]:.2f})")
    # Scripted sampling: LocalLLM builds its sampler from this name at each reply.
    real_sampler = local_module.Sampler

    class Hook:
        def __init__(self, *args: Any) -> None:
            self.inner = local_decode_sampler[0]() if local_decode_sampler[0] else real_sampler(*args)

        def pick(self, logits: Any) -> int:
            return int(self.inner.pick(logits))

    local_module.Sampler = Hook  # type: ignore[misc]
    speeds = _paired_decode(llm, model, processor)
    _log("decode tok/s " + ", ".join(f"{k} {v:.2f}" for k, v in speeds.items()))
    out: dict[str, float] = {
        "load_s": load,
        "threads": float(threads),
        "decode_tok_s_bf16": speeds["bf16"],
        "decode_tok_s": speeds["int8"],
    }
    settings.planner_int8 = "auto"  # the default CPU path from here on: int8 weights (quantized on the next reply)
    rows = {}
    # A session's first step builds the system prompt's state; the later settings find it built.
    for name, constrained, fast_forward, turn in (
        ("prefix cache", False, False, False),
        ("prefix + turn cache", False, False, True),
        ("prefix + turn cache + grammar + fast-forward", True, True, True),
    ):
        llm.use_turn_cache = turn
        seconds, stats = _turn(llm, constrained, fast_forward)
        rows[name] = (seconds, stats)
        _log(f"{name}: steps {seconds[0]:.2f} s, {seconds[1]:.2f} s (step 1 built the prefix: {stats[0].prefix_built})")
        gc.collect()
    for name, (seconds, stats) in rows.items():
        out[f"{name}: step 1 s"] = seconds[0]
        out[f"{name}: step 2 s"] = seconds[1]
        out[f"{name}: step 2 prefilled"] = float(stats[1].prompt_tokens - stats[1].cached_tokens)
        out[f"{name}: step 2 first token s"] = stats[1].first_token_s
    first = rows["prefix cache"][0][0]  # the session's first step, which builds the system prompt's state
    best = rows["prefix + turn cache + grammar + fast-forward"]
    out["step_ratio"] = best[0][1] / first
    forced = sum(s.forced for s in best[1])
    out["forced_token_share"] = forced / max(1, sum(s.new_tokens for s in best[1]))
    out["rss_gib"] = _peak_rss_gib()
    local_module.Sampler = real_sampler  # type: ignore[misc]
    return out


DECODE_TOKENS = 12  # per variant


def _paired_decode(llm: Any, model: Any, processor: Any) -> dict[str, float]:
    """Decode tokens/s with bf16 and with int8 weights, token by token in turn on one cache (both variants see the
    same machine load), median of DECODE_TOKENS each; vchat's linear-attention kernels in both."""
    import torch
    from transformers import DynamicCache

    from vchat.llm.int8 import Int8Linear

    language = model.model.language_model
    swaps = [
        (parent, name, child, Int8Linear(child.weight, child.bias))
        for parent in list(language.modules())
        for name, child in parent.named_children()
        if type(child) is torch.nn.Linear
    ]
    swaps.append((model, "lm_head", model.lm_head, Int8Linear(model.lm_head.weight, None)))
    cpu = torch.device("cpu")
    prompt = llm._encode(model, processor, cpu, [{"role": "user", "content": "make it look like winter"}])
    cache = DynamicCache(config=model.config)
    model.model.rope_deltas = None
    times: dict[str, list[float]] = {"bf16": [], "int8": []}
    with torch.inference_mode():
        out = model(input_ids=prompt.ids, position_ids=prompt.positions, cache=cache, use_cache=True, logits_to_keep=1)
        position = prompt.ids.shape[1]
        token = int(out.logits[0, -1].argmax())
        for _ in range(DECODE_TOKENS):
            for variant in ("bf16", "int8"):
                for parent, name, plain, quantized in swaps:
                    setattr(parent, name, quantized if variant == "int8" else plain)
                started = time.perf_counter()
                out = model(
                    input_ids=torch.tensor([[token]]),
                    position_ids=torch.full((4, 1, 1), position),
                    cache=cache,
                    use_cache=True,
                )
                token = int(out.logits[0, -1].argmax())
                times[variant].append(time.perf_counter() - started)
                position += 1
    for parent, name, plain, _ in swaps:
        setattr(parent, name, plain)
    return {variant: 1 / statistics.median(spent) for variant, spent in times.items()}


def _numel(shape: list[int]) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


def _peak_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    cells = [header, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def cpu_benchmark(size: str, keep: Path | None, as_json: bool) -> None:
    import json
    import os
    import subprocess

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vchat-planner-bench-") as tmp:
        folder = (keep or Path(tmp)) / size
        if not (folder / "config.json").is_file():
            started = time.perf_counter()
            count = write_planner(size, folder)
            _log(
                f"Qwen3.5-{size.upper()} shape: {count / 1e9:.2f} B parameters, written in "
                f"{time.perf_counter() - started:.0f} s"
            )
        # A fresh process: the measurement does not inherit this one's allocations.
        code = (
            "import json, sys; sys.argv = ['x']; sys.path[:0] = [{!r}, {!r}];"
            "from benchmarks.planner import cpu_run;"
            "print('RESULT', json.dumps(cpu_run({!r}, __import__('pathlib').Path({!r}))))"
        ).format(str(ROOT), str(ROOT / "src"), size, str(folder))
        done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    r: dict[str, Any] = json.loads(line[len("RESULT ") :])
    r["decode_speedup"] = r["decode_tok_s"] / r["decode_tok_s_bf16"]
    r["load_average_before"] = load[0]
    r["load_average_after"] = os.getloadavg()[0]
    if as_json:
        print(json.dumps({"model": f"Qwen3.5-{size.upper()} shape, random weights, CPU", **r}, indent=1))
        return
    print(
        f"Qwen3.5-{size.upper()} shape, random weights, CPU, {r['threads']:.0f} threads; "
        f"load average {r['load_average_before']:.2f} before, {r['load_average_after']:.2f} after"
    )
    _table(
        "Decode tokens/s (one-token forwards, median)",
        ["bf16", "default CPU path (int8 weights)", "ratio"],
        [[f"{r['decode_tok_s_bf16']:.2f}", f"{r['decode_tok_s']:.2f}", f"{r['decode_speedup']:.2f}x"]],
    )
    names = [k[: -len(": step 1 s")] for k in r if k.endswith(": step 1 s")]
    _table(
        "A two-step turn (scripted replies: an instruct_edit action, then an answer), default CPU path (int8)",
        ["setting", "step 1", "step 2", "step 2 first token", "step 2 prefilled tokens"],
        [
            [
                n,
                f"{r[n + ': step 1 s']:.2f} s",
                f"{r[n + ': step 2 s']:.2f} s",
                f"{r[n + ': step 2 first token s']:.2f} s",
                f"{r[n + ': step 2 prefilled']:.0f}",
            ]
            for n in names
        ],
    )
    print(
        f"\nstep_ratio (step 2 with every path over the session's first step) {r['step_ratio']:.2f}; "
        f"forced_token_share {r['forced_token_share']:.2f}"
    )


def gpu_benchmark(repeats: int, budget: str) -> None:
    """The 2B in bf16 on CUDA sharing `budget` with SD 1.5: step latency, the cost of swapping back, peak memory."""
    import torch
    from benchmarks.runtime import build
    from tests.zoo import _clip_tokenizer

    from vchat.config import Settings
    from vchat.llm.local import LocalLLM
    from vchat.runtime import ModelManager

    if not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device")
    sd = ("sd15.unet", "sd15.text_encoder", "sd15.vae")
    with tempfile.TemporaryDirectory(prefix="vchat-planner-gpu-") as tmp:
        folder = Path(tmp)
        write_planner("2b", folder / "planner", device="cuda")
        with torch.device("cuda"):
            for key in sd:
                build(key).half().save_pretrained(folder / "sd15" / key.split(".")[1])
        _clip_tokenizer().save_pretrained(folder / "sd15" / "tokenizer")
        models = {"planner": str(folder / "planner"), "sd15": str(folder / "sd15")}
        manager = ModelManager(models, device="cuda", vram_budget=budget)
        settings = Settings(max_tokens=REPLY_TOKENS)
        llm = LocalLLM(settings)
        llm.bind_runtime(lambda: manager)
        torch.cuda.reset_peak_memory_stats()
        rows = []
        for run in range(repeats):
            _, cold, _ = _step(llm, 1)
            _, warm, _ = _step(llm, 2)
            started = time.perf_counter()
            with manager.use(*sd, tool="generate_image"):
                torch.cuda.synchronize()
            sd_in = time.perf_counter() - started
            _, back, _ = _step(llm, 3)  # the planner comes back from CPU memory
            rows.append(
                [
                    f"run {run + 1}",
                    f"{cold:.2f} s",
                    f"{warm:.2f} s",
                    f"{sd_in:.2f} s",
                    f"{back:.2f} s",
                    f"{back - warm:+.2f} s",
                ]
            )
        peak = torch.cuda.max_memory_allocated() / 2**30
        _table(
            f"Qwen3.5-2B bf16 + SD 1.5 fp16 on {torch.cuda.get_device_name()}, budget {budget}, peak {peak:.2f} GiB",
            ["run", "step (cold)", "step (cached)", "SD 1.5 moved in", "step after SD", "swap cost"],
            rows,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["0.8b", "2b", "tiny"], default="0.8b", help="tiny: a smoke test")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the tables")
    parser.add_argument("--gpu", action="store_true", help="CUDA: the 2B sharing a budget with SD 1.5")
    parser.add_argument("--repeats", type=int, default=3, help="--gpu only")
    parser.add_argument("--budget", default="6GB")
    parser.add_argument("--keep", type=Path, default=None, help="write the random model here and reuse it")
    args = parser.parse_args()
    if args.gpu:
        gpu_benchmark(args.repeats, args.budget)
        return
    cpu_benchmark(args.size, args.keep, args.json)


if __name__ == "__main__":
    main()
