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


def cpu_run(size: str, folder: Path) -> dict[str, float]:
    """One full measurement in this process: load, prefill, decode, steps without and with the prefix cache."""
    import torch

    from vchat.config import Settings
    from vchat.llm.local import KEYS, LocalLLM

    settings = Settings(max_tokens=REPLY_TOKENS)
    settings.models["planner"] = str(folder)
    settings.runtime.device = "cpu"
    llm = LocalLLM(settings)
    started = time.perf_counter()
    with llm.manager.use(*KEYS, tool="planner") as parts:
        model, processor = parts["planner"], parts["planner.processor"]
    load = time.perf_counter() - started
    _log(f"loaded in {load:.1f} s")
    # Prefill of the system prompt alone: building the prefix cache.
    prompt = llm._encode(model, processor, torch.device("cpu"), _messages(0))
    started = time.perf_counter()
    llm._prefix_state(model, prompt, torch.device("cpu"))
    prefill = time.perf_counter() - started
    _log(f"system prompt ({prompt.prefix_ids.shape[1]} tokens) prefilled in {prefill:.1f} s")
    llm.reset_cache()
    llm.use_prefix_cache = False
    no_cache_first, no_cache_step, stats = _step(llm, 1)
    decode = stats.new_tokens / max(stats.total_s - stats.first_token_s, 1e-9)
    _log(f"step without cache {no_cache_step:.1f} s ({stats.prompt_tokens} prompt tokens, {decode:.1f} tok/s)")
    llm.use_prefix_cache = True
    first_ttft, first_step, _ = _step(llm, 2)  # builds the cache
    _log(f"step 1 with cache {first_step:.1f} s")
    later_ttft, later_step, later = _step(llm, 3)  # reuses it
    _log(f"step 2 with cache {later_step:.1f} s")
    variants = _decode_variants(llm, model, processor)
    _log("decode tok/s " + ", ".join(f"{k} {v:.2f}" for k, v in variants.items()))
    return {
        **{f"decode {k}": v for k, v in variants.items()},
        "load_s": load,
        "prompt_tokens": float(prompt.prefix_ids.shape[1]),
        "step_tokens": float(later.prompt_tokens),
        "prefill_s": prefill,
        "decode_tps": decode,
        "step_nocache_ttft": no_cache_first,
        "step_nocache_s": no_cache_step,
        "step1_ttft": first_ttft,
        "step1_s": first_step,
        "step2_ttft": later_ttft,
        "step2_s": later_step,
        "cached_tokens": float(later.cached_tokens),
        "rss_gib": _peak_rss_gib(),
    }


DECODE_PAIRS = 8  # tokens per variant in the paired decode comparison


def _decode_variants(llm: Any, model: Any, processor: Any) -> dict[str, float]:
    """Decode tokens/s of transformers' reference linear-attention code vs vchat's, at 1 thread and at torch's
    default, measured token by token in turn on one cache (each variant sees the same machine load)."""
    import copy

    import torch

    from vchat.llm import qwen_kernels

    default = torch.get_num_threads()
    variants = [(kernels, threads) for threads in sorted({1, default}) for kernels in ("reference", "vchat")]
    cpu = torch.device("cpu")
    prompt = llm._encode(model, processor, cpu, _messages(4))
    cache, cached = llm._prefix_state(model, prompt, cpu)
    cache = copy.deepcopy(cache)
    model.model.rope_deltas = None
    times: dict[str, list[float]] = {f"{k}, {t} thr": [] for k, t in variants}
    position = prompt.ids.shape[1]
    with torch.inference_mode():
        out = model(
            input_ids=prompt.ids[:, cached:],
            position_ids=prompt.positions[:, :, cached:],
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        token = int(out.logits[0, -1].argmax())
        for _ in range(DECODE_PAIRS):
            for kernels, threads in variants:
                torch.set_num_threads(threads)
                if kernels == "vchat":
                    qwen_kernels.install()
                else:
                    qwen_kernels.uninstall()
                started = time.perf_counter()
                step = torch.tensor([[token]])
                out = model(input_ids=step, position_ids=torch.full((4, 1, 1), position), cache=cache, use_cache=True)
                token = int(out.logits[0, -1].argmax())
                times[f"{kernels}, {threads} thr"].append(time.perf_counter() - started)
                position += 1
    torch.set_num_threads(default)
    qwen_kernels.install()
    return {name: 1 / statistics.median(spent) for name, spent in times.items()}


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


def cpu_benchmark(sizes: list[str], repeats: int, threads: int | None, keep: Path | None = None) -> None:
    import subprocess

    import torch

    if threads:
        torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 on CPU, {REPLY_TOKENS} new tokens/step")
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="vchat-planner-bench-") as tmp:
        for size in sizes:
            folder = (keep or Path(tmp)) / size
            started = time.perf_counter()
            if (folder / "config.json").is_file():  # --keep: written by an earlier run
                from safetensors import safe_open

                count = 0
                for file in folder.glob("*.safetensors"):
                    with safe_open(str(file), "pt") as weights:
                        count += sum(_numel(weights.get_slice(k).get_shape()) for k in weights.keys())  # noqa: SIM118 (safe_open is not a dict)
            else:
                count = write_planner(size, folder)
            print(
                f"Qwen3.5-{size.upper()} shape: {count / 1e9:.2f} B parameters, written in "
                f"{time.perf_counter() - started:.0f} s"
            )
            results[size] = []
            for run in range(repeats):
                # Each run in a fresh process: load time includes the imports' warm page cache only, and
                # one slow run (this VM is shared) does not leak into the next.
                code = (
                    "import json, sys; sys.argv = ['x']; sys.path[:0] = [{!r}, {!r}];"
                    "from benchmarks.planner import cpu_run; import torch;{}"
                    "print('RESULT', json.dumps(cpu_run({!r}, __import__('pathlib').Path({!r}))))"
                ).format(
                    str(ROOT),
                    str(ROOT / "src"),
                    f"torch.set_num_threads({threads});" if threads else "",
                    size,
                    str(folder),
                )
                # stderr passes through: each phase is logged as it ends (a slow VM shows where the time goes).
                done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, check=True)
                line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
                import json

                results[size].append(json.loads(line[len("RESULT ") :]))
                r = results[size][-1]
                print(
                    f"  run {run + 1}: step no cache {r['step_nocache_s']:.1f} s, step 1 {r['step1_s']:.1f} s, "
                    f"step 2 {r['step2_s']:.1f} s, first token of step 2 {r['step2_ttft']:.2f} s"
                )

    def med(size: str, key: str) -> float:
        return statistics.median(r[key] for r in results[size])

    rows = []
    for size in sizes:
        first, later = med(size, "step1_s"), med(size, "step2_s")
        rows.append(
            [
                f"Qwen3.5-{size.upper()}",
                f"{med(size, 'load_s'):.1f} s",
                f"{med(size, 'prompt_tokens'):.0f}",
                f"{med(size, 'prefill_s'):.1f} s",
                f"{med(size, 'decode_tps'):.1f}",
                f"{med(size, 'step_nocache_ttft'):.2f} / {med(size, 'step_nocache_s'):.1f} s",
                f"{med(size, 'step1_ttft'):.2f} / {first:.1f} s",
                f"{med(size, 'step2_ttft'):.2f} / {later:.1f} s",
                f"{later / first:.2f}x",
                f"{med(size, 'rss_gib'):.1f} GiB",
            ]
        )
    _table(
        f"Built-in planner on CPU, bf16, random weights; medians of {repeats} runs "
        f"(step = first token / whole step of {REPLY_TOKENS} new tokens)",
        [
            "model",
            "load",
            "system prompt tokens",
            "prefill",
            "decode tok/s",
            "step, no cache",
            "step 1 (builds cache)",
            "step 2 (cached)",
            "step 2 / step 1",
            "peak RSS",
        ],
        rows,
    )
    names = [k[len("decode ") :] for k in results[sizes[0]][0] if k.startswith("decode ")]
    _table(
        f"Decode tokens/s by variant (median over {DECODE_PAIRS} tokens each, variants interleaved token by token; "
        "reference = transformers' PyTorch fallback for the linear-attention layers, vchat = vchat.llm.qwen_kernels)",
        ["model", *names],
        [[f"Qwen3.5-{size.upper()}", *(f"{med(size, 'decode ' + n):.2f}" for n in names)] for size in sizes],
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
    parser.add_argument("--size", choices=["0.8b", "2b", "both"], default="0.8b")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--gpu", action="store_true", help="CUDA: the 2B sharing a budget with SD 1.5")
    parser.add_argument("--budget", default="6GB")
    parser.add_argument("--keep", type=Path, default=None, help="write the random models here and reuse them")
    args = parser.parse_args()
    if args.gpu:
        gpu_benchmark(args.repeats, args.budget)
        return
    sizes = ["0.8b", "2b"] if args.size == "both" else [args.size]
    cpu_benchmark(sizes, args.repeats, args.threads, args.keep)


if __name__ == "__main__":
    main()
