"""Classic against current tier, tool by tool: parameters, weight bytes, peak memory alone and beside the planner,
seconds for one call.

    python benchmarks/tiers.py                  # counts (meta device) + one call per runnable tool on CPU
    python benchmarks/tiers.py --counts-only    # parameters and weight bytes only (seconds, no memory)
    python benchmarks/tiers.py --gpu            # the same on CUDA, and the current tier against 16 and 12 GiB

Full-size architectures with random weights (speed and memory do not depend on weight values); no downloads. The
models and the one call per tool are listed in benchmarks/tier_models.py (ENTRIES, CALLS): add rows there. Every
measured call runs in a process of its own, one at a time, so a peak is that tool's alone: on CPU the peak is the
process's resident memory above what it held before building the models, on CUDA `max_memory_allocated`.
"With planner" builds the 2B planner (bf16) on the same device first and reports the whole peak: on CPU the process's
peak resident memory (planner, tool, and the interpreter with its libraries, about 0.5 GiB), on CUDA every allocation.
A call is skipped, and said so, when the memory it would take is not available on this machine now.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tier_models import CALLS, ENTRIES, PLANNER, ToolEntry, build_full  # noqa: E402

GIB = 2**30
BUDGETS = (16, 12)  # GiB: the goal is every current tool in 16 with the planner resident, in 12 with it moved off


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """Print a plain aligned table."""
    cells = [header, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        last = len(row) - 1
        aligned = (
            c.ljust(w) if i < 2 or i == last else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        print("  ".join(aligned).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def gib(nbytes: float | None) -> str:
    return "-" if nbytes is None else f"{nbytes / GIB:.2f} GiB"


def counts(keys: set[str]) -> dict[str, int]:
    """Parameters (and buffers) of each component, built on the meta device."""
    import torch

    from vchat.runtime.memory import module_params

    found: dict[str, int] = {}
    with torch.device("meta"):
        for key in sorted(keys):
            found[key] = module_params(build_full(key))
    return found


def dtype_bytes(key: str, device: str) -> int:
    """Bytes per weight as vchat loads the component: bf16 planner and klein, fp16 on CUDA, fp32 on CPU."""
    if key == PLANNER or key.startswith("flux2_klein"):
        return 2
    if key == "grounding_dino":
        return 4  # kept in fp32 on every device (its box maths loses boxes in fp16)
    return 2 if device.startswith("cuda") else 4


# ----- one measured call, in a child process -----------------------------------------------------------------------


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def built(key: str, device: str, dtype: Any) -> Any:
    """A full-size component made in its dtype on the device (no fp32 copy on the way: that would be the peak)."""
    import torch

    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return build_full(key).to(dtype).eval()
    finally:
        torch.set_default_dtype(default)


def measure_one(tool: str, tier: str, device: str, planner: bool) -> dict[str, Any]:
    """Build the entry's components (and the planner) full-size, run its call twice, report the second."""
    import torch

    entry = next(e for e in ENTRIES if e.tool == tool and e.tier == tier)
    assert entry.call is not None
    torch.manual_seed(0)
    cuda = device.startswith("cuda")
    resident = []
    if planner:
        resident.append(built(PLANNER, device, torch.bfloat16))
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else rss()
    parts: dict[str, Any] = {}
    for key in entry.components:
        size = dtype_bytes(key, device)
        dtype = torch.float32 if size == 4 else (torch.bfloat16 if key.startswith("flux2") else torch.float16)
        parts[key] = built(key, device, dtype)
    compute = torch.float16 if cuda else torch.float32
    seconds: list[float] = []
    cpu_seconds: list[float] = []
    for _ in range(2):
        started, cpu_started = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            CALLS[entry.call](parts, device, compute)
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    if cuda:
        peak = torch.cuda.max_memory_allocated() - (0 if planner else before)
    else:
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak = peak_rss - (0 if planner else before)
    return {"peak": peak, "seconds": seconds[-1], "cpu_seconds": cpu_seconds[-1], "first": seconds[0]}


def run_child(entry: ToolEntry, device: str, planner: bool, timeout: float) -> dict[str, Any] | str:
    """The measurement of one entry in a fresh process; a short reason instead when it failed."""
    args = [sys.executable, __file__, "--one", entry.tool, entry.tier, "--device", device]
    if planner:
        args.append("--planner")
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s"
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return (lines[-1] if lines else f"exit {done.returncode}")[:80]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def available(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info()[0])
    with open("/proc/meminfo") as handle:
        info = dict(line.split(":", 1) for line in handle)
    return int(info["MemAvailable"].split()[0]) * 1024


def cell(found: dict[str, Any] | str | None, field: str, runnable: bool, label: str, notes: list[str]) -> str:
    """One figure of the table; a skipped or failed run becomes a numbered note said under the table."""
    if found is None:
        return "-" if runnable else "not run"
    if isinstance(found, str):
        note = f"{label}: {found}"
        if note not in notes:
            notes.append(note)
        return f"[{notes.index(note) + 1}]"
    return gib(found[field]) if field == "peak" else f"{found[field]:.2f} s"


# ----- the report --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="measure on CUDA instead of CPU")
    parser.add_argument("--counts-only", action="store_true", help="parameters and bytes only, no calls")
    parser.add_argument("--no-planner", action="store_true", help="skip the runs with the planner resident")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one measured call may take")
    parser.add_argument("--only", metavar="TOOLS", help="only these tools (comma-separated), both tiers")
    parser.add_argument("--one", nargs=2, metavar=("TOOL", "TIER"), help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--planner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], args.one[1], args.device, args.planner)))
        return
    device = "cuda" if args.gpu else "cpu"
    keys = {k for e in ENTRIES for k in e.components} | {PLANNER}
    params = counts(keys)
    weights = {e: sum(params[k] * dtype_bytes(k, device) for k in e.components) for e in ENTRIES}
    planner_bytes = params[PLANNER] * 2
    measured: dict[tuple[ToolEntry, bool], dict[str, Any] | str] = {}
    if not args.counts_only:
        for entry in ENTRIES:
            if entry.call is None or (args.only and entry.tool not in args.only.split(",")):
                continue
            for planner in (False,) if args.no_planner else (False, True):
                need = 1.6 * weights[entry] + (planner_bytes if planner else 0) + 2 * GIB
                have = available(device)
                if need > have:
                    measured[(entry, planner)] = f"skipped: needs ~{gib(need)}, {gib(have)} were free"
                    continue
                print(f"measuring {entry.tool} ({entry.tier}){' with planner' if planner else ''}…", file=sys.stderr)
                measured[(entry, planner)] = run_child(entry, device, planner, args.timeout)
    rows = []
    notes: list[str] = []  # why a cell holds no figure (skipped for memory, failed), numbered in the table
    wanted = set(args.only.split(",")) if args.only else None
    for entry in ENTRIES:
        if wanted is not None and entry.tool not in wanted:
            continue
        alone, beside = measured.get((entry, False)), measured.get((entry, True))

        runnable = entry.call is not None
        label = f"{entry.tool} ({entry.tier}"
        count = sum(params[k] for k in entry.components)
        rows.append(
            [
                entry.tool,
                entry.tier,
                f"{count / 1e6:,.0f} M",
                gib(weights[entry]),
                cell(alone, "peak", runnable, label + ")", notes),
                cell(beside, "peak", runnable, label + ", with planner)", notes),
                cell(alone, "seconds", runnable, label + ")", notes),
                cell(alone, "cpu_seconds", runnable, label + ")", notes),
                entry.note,
            ]
        )
    where = "CUDA (fp16; bf16 planner and klein)" if args.gpu else "CPU (fp32; bf16 planner and klein)"
    table(
        f"tools by tier on {where}; planner: Qwen3.5-2B, {params[PLANNER] / 1e6:,.0f} M, {gib(planner_bytes)} bf16",
        ["tool", "tier", "params", "weights", "peak alone", "peak with planner", "one call", "CPU time", "note"],
        rows,
    )
    for number, note in enumerate(notes, start=1):
        print(f"  [{number}] {note}")
    if not args.gpu:
        return
    budget_rows = []
    for entry in (e for e in ENTRIES if e.tier == "current"):
        alone, beside = measured.get((entry, False)), measured.get((entry, True))
        row = [entry.tool, entry.tier]
        for limit in BUDGETS:
            # 16 GiB: the planner stays resident; 12 GiB: the planner is moved off while the tool runs.
            found = beside if limit == 16 else alone
            if isinstance(found, dict):
                row.append(("fits" if found["peak"] <= limit * GIB else "over") + f" ({gib(found['peak'])})")
            else:
                row.append("not measured")
        budget_rows.append(row)
    table(
        f"current tier against device budgets, from the peaks above ({where})",
        ["tool", "tier", "16 GiB, planner resident", "12 GiB, planner moved off"],
        budget_rows,
    )


if __name__ == "__main__":
    main()
