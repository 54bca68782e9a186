"""The README's other install lines, run as written on a fresh clone: the CPU-only install and the Ray recipe's wheel.

Offline like the Quickstart test (`PIP_NO_INDEX`, the host's packages seen through a `.pth` file), so the PyTorch
CPU index the CPU line names is not contacted: what is checked is that the line runs as written and installs this
checkout, and that the Ray recipe installs this project from the wheel it builds, never `vchat` from an index.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.test_readme_quickstart import _clone, _host_packages, readme_section


def _bash_lines(section: str) -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def cpu_install_line() -> str:
    lines = [line for line in _bash_lines(readme_section("Quickstart")) if "download.pytorch.org/whl/cpu" in line]
    assert len(lines) == 1, lines
    return lines[0]


def ray_install_lines() -> list[str]:
    lines = _bash_lines(readme_section("Batch"))
    wheel = [line for line in lines if line.startswith("pip wheel")]
    install = [line for line in lines if line.startswith("pip install")]
    assert len(wheel) == 1 and len(install) == 1, lines
    return [wheel[0], install[0]]


def test_cpu_line_installs_the_cpu_build_first_then_this_checkout() -> None:
    line = cpu_install_line()
    torch_at = line.index("pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu")
    assert torch_at < line.index("pip install -e .")


def test_ray_recipe_builds_a_wheel_of_this_checkout_and_installs_it_with_the_ray_extra() -> None:
    from vchat import __version__

    build, install = ray_install_lines()
    assert build == "pip wheel --no-deps -w dist ."
    # The wheel's file name in the README follows the version: a bump that forgets the README fails here.
    assert f"./dist/vchat_cli-{__version__}-py3-none-any.whl[ray]" in install
    assert install.startswith("pip install torch==2.14.1 torchvision==0.29.1 && ")


def _venv(folder: Path, host: Path) -> Path:
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = subprocess.run(
        [str(folder / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "zz_host_packages.pth").write_text(f"{host}\n")
    return folder


def _env(tmp_path: Path) -> dict[str, str]:
    base_python = getattr(sys, "_base_executable", sys.executable)
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    for name in ("python3", "python"):
        if not (shims / name).exists():
            (shims / name).symlink_to(base_python)
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.update(
        PATH=f"{shims}:/usr/local/bin:/usr/bin:/bin",
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_CACHE_DIR=str(tmp_path / "pip-cache"),
    )
    return env


def _where(venv: Path, env: dict[str, str]) -> tuple[Path, str]:
    code = "import vchat, importlib.metadata as m; print(vchat.__file__); print(m.version('vchat-cli'))"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split("\n")
    return Path(out[0]).resolve(), out[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cpu_line_and_ray_recipe_run_as_written_on_a_fresh_clone(tmp_path: Path) -> None:
    from vchat import __version__

    clone = _clone(tmp_path)
    host = _host_packages(tmp_path)
    env = _env(tmp_path)
    _venv(clone / ".venv", host)
    script = f"set -e\ncd {clone}\n{cpu_install_line()}\nvchat --help >/dev/null\n"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    where, version = _where(clone / ".venv", env)
    assert where.is_relative_to(clone.resolve()) and version == __version__

    # A worker node: its own environment, installing from the wheel the head node built.
    node = _venv(tmp_path / "node-venv", host)
    build, install = ray_install_lines()
    script = f"set -e\ncd {clone}\n. {clone}/.venv/bin/activate\n{build}\ndeactivate\n"
    script += f". {node}/bin/activate\npython -m ensurepip --default-pip >/dev/null\n"
    script += f"{install}\nvchat --help >/dev/null\n"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    where, version = _where(node, env)
    # Installed from the wheel into the node's own site-packages, not linked to the checkout.
    assert not where.is_relative_to(clone.resolve()) and where.is_relative_to(node.resolve()), where
    assert version == __version__
    assert (clone / "dist" / f"vchat_cli-{__version__}-py3-none-any.whl").is_file()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_test_command_installs_and_runs_tests_on_a_fresh_clone(tmp_path: Path) -> None:
    """`scripts/test` alone, in a fresh clone with no venv: it makes one, installs the test needs, runs pytest."""
    clone = _clone(tmp_path)
    host = _host_packages(tmp_path)
    env = _env(tmp_path)
    # The venv scripts/test would make, made here first so that it sees the host's packages (offline).
    _venv(clone / ".venv", host)
    subprocess.run([str(clone / ".venv" / "bin" / "python"), "-m", "ensurepip", "--default-pip"], env=env, check=True)
    done = subprocess.run(
        ["scripts/test", "tests/test_distribution.py"], cwd=clone, capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "passed" in done.stdout and "scripts/test: pytest took" in done.stderr
    where, _ = _where(clone / ".venv", env)
    assert where.is_relative_to(clone.resolve())
