"""Install size: what `pip install` of this project puts on disk, GPU (PyPI default) build vs CPU build, side by side.

The GPU column sums the files (RECORD) of every distribution that pyproject's dependencies pull in, as installed in
the running interpreter. The CPU column swaps the PyTorch stack (torch, triton, the nvidia-* and cuda-* wheels) for
a CPU torch wheel installed here into a temporary folder (`--cpu-wheel`), so that figure is measured too; torchvision
is counted at the size of the build installed here (its CPU wheel differs by a few MB), which makes it an estimate.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000


def _torch_stack(name: str) -> bool:
    # What the CUDA build of torch brings and a CPU build does not (torch itself is swapped, not dropped).
    return name in ("torch", "triton") or name.startswith(("nvidia-", "cuda-"))


def closure(requirements: list[str], extras: tuple[str, ...] = ()) -> dict[str, metadata.Distribution]:
    """Every installed distribution that `requirements` need, markers evaluated for this interpreter."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(Requirement(text), extras) for text in requirements]
    while todo:
        req, wanted = todo.pop()
        env_ok = req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (*wanted, ""))
        if not env_ok:
            continue
        name = canonicalize_name(req.name)
        if name in found:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            print(f"  (not installed here: {req.name})", file=sys.stderr)
            continue
        found[name] = dist
        todo += [(Requirement(text), tuple(req.extras)) for text in dist.requires or []]
    return found


def disk_size(dist: metadata.Distribution) -> int:
    """Bytes of the files a distribution's RECORD lists (what uninstalling it would free)."""
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def folder_size(folder: Path) -> int:
    """Bytes of every file below `folder`."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def cpu_torch(wheel: Path) -> tuple[int, float]:
    """Install a torch wheel (no dependencies) into a temporary folder: its size on disk and the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", tmp, str(wheel)],
            check=True,
        )
        seconds = time.perf_counter() - start
        return folder_size(Path(tmp)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu-wheel", type=Path, help="a CPU torch wheel on disk (e.g. /opt/wheels/torch-*+cpu-*.whl)")
    parser.add_argument("--extras", default="", help="comma-separated extras to count too (e.g. ray)")
    args = parser.parse_args()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = tuple(e for e in args.extras.split(",") if e)
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    dists = closure(reqs)
    sizes = {name: disk_size(dist) for name, dist in dists.items()}
    stack = {n: s for n, s in sizes.items() if _torch_stack(n)}
    rest = sum(s for n, s in sizes.items() if not _torch_stack(n))
    gpu_total = rest + sum(stack.values())

    print(f"{project['name']} ({', '.join(extras) or 'no extras'}): {len(dists)} distributions installed here\n")
    print(f"{'part':44} {'GPU build (MB)':>15} {'CPU build (MB)':>15}")
    print("-" * 76)
    for name, size in sorted(stack.items(), key=lambda kv: -kv[1]):
        if size >= 20 * MB or name == "torch":
            print(f"{name + ' ' + dists[name].version:44} {size / MB:15.0f} {'':>15}")
    small = sum(s for n, s in stack.items() if s < 20 * MB and n != "torch")
    print(f"{'other CUDA wheels':44} {small / MB:15.0f} {'':>15}")
    cpu_note = "not measured (no --cpu-wheel)"
    cpu_total = None
    if args.cpu_wheel:
        cpu_size, seconds = cpu_torch(args.cpu_wheel)
        cpu_total = rest + cpu_size
        cpu_note = f"{args.cpu_wheel.name}: installed in {seconds:.1f} s"
        print(f"{'torch (CPU wheel, installed here)':44} {'':>15} {cpu_size / MB:15.0f}")
    print(f"{'everything else (torchvision, diffusers, ...)':44} {rest / MB:15.0f} {rest / MB:15.0f}")
    print("-" * 76)
    cpu_cell = f"{cpu_total / MB:15.0f}" if cpu_total is not None else f"{'—':>15}"
    print(f"{'total':44} {gpu_total / MB:15.0f} {cpu_cell}")
    print(f"\nCPU torch: {cpu_note}")
    where = shutil.which("pip") or sys.executable
    print(f"measured with {where}; sizes are bytes of the installed files (RECORD), 1 MB = 10^6 bytes")


if __name__ == "__main__":
    main()
