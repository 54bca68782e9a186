"""The README's Quickstart, run literally on a fresh clone in a fresh virtual environment.

The commands are read out of README.md, so the README and what works cannot drift apart. A real
fresh venv would download several GB of PyTorch: instead the new venv sees this interpreter's
installed packages through a `.pth` file (a folder of links that leaves out this checkout's own
vchat), and pip runs offline (`PIP_NO_INDEX`), so the install command runs for real and resolves
every dependency, fast. A scripted model stands in for the language model.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from PIL import Image
from tests.helpers import act, answer

ROOT = Path(__file__).resolve().parents[1]


def readme_section(title: str) -> str:
    """The text of one `## title` section of README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def first_bash_block(section: str) -> list[str]:
    """Command lines of the first ```bash block, comments and blank lines left out."""
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "no ```bash block"
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def quickstart() -> tuple[str, str]:
    commands = first_bash_block(readme_section("Quickstart"))
    assert len(commands) == 2, f"the Quickstart must be exactly two set-up commands, not {commands}"
    return commands[0], commands[1]


def test_quickstart_is_one_install_and_one_main_job_on_a_shipped_photo() -> None:
    install, main_job = quickstart()
    assert "pip install" in install
    assert main_job.startswith('vchat run "'), "the main job is a chat request, not a tool call"
    photo = re.search(r"-i (\S+)", main_job)
    assert photo and (ROOT / photo.group(1)).is_file()
    assert (ROOT / photo.group(1)).stat().st_size <= 100_000
    notes = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    assert Path(photo.group(1)).name in notes and "public domain" in notes.lower()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    block = re.search(r"```bash\n(.*?)```", readme_section("Development"), re.DOTALL)
    assert block
    tests = [line.split("#")[0].strip() for line in block.group(1).splitlines() if "test command" in line]
    assert len(tests) == 1, "the Development section names one test command"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    ci = [line for line in ci if line and not line.startswith("#")]
    assert ci[-1] == tests[0], f".ci/run ends with {ci[-1]!r}, the README says {tests[0]!r}"


def _host_packages(tmp_path: Path) -> Path:
    """A folder of links to this interpreter's installed packages, without vchat (the clone's must win) and pip."""
    view = tmp_path / "host-packages"
    view.mkdir()
    folders = dict.fromkeys(sysconfig.get_path(name) for name in ("purelib", "platlib"))
    for folder in folders:
        for entry in Path(folder).iterdir():
            name = entry.name.lower()
            # pip too: ensurepip would take the host's for its own and leave the venv without a `pip` command.
            skip = (
                name.startswith(("vchat", "__editable__", "_vchat", "pip-")) or name == "pip" or name.endswith(".pth")
            )
            if not skip and not (view / entry.name).exists():
                (view / entry.name).symlink_to(entry)
    return view


def _clone(tmp_path: Path) -> Path:
    clone = tmp_path / "vchat"
    if (ROOT / ".git").exists() and shutil.which("git"):
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    else:  # a source tree without git: copy what a clone would hold
        ignore = shutil.ignore_patterns(".venv", "vchat-out", "__pycache__", "*.egg-info", ".mypy_cache", ".git")
        shutil.copytree(ROOT, clone, ignore=ignore)
    return clone


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quickstart_runs_on_a_fresh_clone(tmp_path: Path) -> None:
    install, main_job = quickstart()
    clone = _clone(tmp_path)
    base_python = getattr(sys, "_base_executable", sys.executable)
    # `python3` in the README is the interpreter this venv was made from (same version as the packages).
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "python3").symlink_to(base_python)
    (shims / "python").symlink_to(base_python)
    # Make the venv the README's command will reuse, and let it see the installed heavy packages.
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(clone / ".venv")], check=True)
    site = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "zz_host_packages.pth").write_text(str(_host_packages(tmp_path)) + "\n")
    replies = tmp_path / "replies.txt"
    replies.write_text(act("canny_edges", '{"image": "img1"}') + "\n---\n" + answer("The edges are in img2."))
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "TERM")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        PATH=f"{shims}:/usr/local/bin:/usr/bin:/bin",
        PIP_NO_INDEX="1",  # offline: every dependency must already be satisfied
        PIP_NO_BUILD_ISOLATION="0",  # build with the setuptools the venv sees, not one fetched from PyPI
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_CACHE_DIR=str(tmp_path / "pip-cache"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(tmp_path / "hub"),
        VCHAT_LLM=f"scripted:{replies}",  # stands in for the language model
        VCHAT_PREVIEW="none",
    )
    script = f"set -e\ncd {clone}\n{install}\n{main_job}\n"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=840)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "The edges are in img2."
    where = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import vchat; print(vchat.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    assert Path(where).resolve().is_relative_to(clone.resolve()), f"vchat came from {where}, not the clone"
    made = sorted((clone / "vchat-out").glob("*/img2-canny_edges.png"))
    assert len(made) == 1, sorted(p.name for p in (clone / "vchat-out").rglob("*"))
    with Image.open(made[0]) as image:
        assert image.size == (512, 512)
