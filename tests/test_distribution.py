"""The distribution name: free on PyPI when last checked, never `vchat`, and what every README install line uses."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _normalise(name: str) -> str:
    # PEP 503: PyPI treats runs of -, _ and . alike, and case does not matter.
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_name() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"])


def _names() -> tuple[dt.date, dict[str, str]]:
    text = (ROOT / "docs" / "pypi-names.txt").read_text(encoding="utf-8")
    checked = re.search(r"^# checked: (\d{4}-\d{2}-\d{2})", text, re.MULTILINE)
    assert checked, "the list says when it was checked"
    rows = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, state, *_ = line.split("\t")
            assert state in ("taken", "free"), line
            rows[_normalise(name)] = state
    return dt.date.fromisoformat(checked.group(1)), rows


def test_the_name_is_not_a_taken_one() -> None:
    _, rows = _names()
    name = _normalise(_project_name())
    assert name != "vchat", "`vchat` on PyPI is another project (a WeChat interface)"
    assert rows.get("vchat") == "taken"
    assert rows.get(name) == "free", f"{name!r} must be in docs/pypi-names.txt as checked free"


def test_the_list_is_dated_and_not_from_the_future() -> None:
    checked, rows = _names()
    assert dt.date(2026, 1, 1) <= checked <= dt.date.today()
    assert len(rows) >= 2


def test_every_readme_install_names_this_project_not_the_pypi_vchat() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    installs = [line for line in readme.splitlines() if re.search(r"\bpip install\b", line)]
    assert installs
    for line in installs:
        # Installing the bare name (with or without extras) from an index would fetch the WeChat project.
        assert not re.search(r"pip install[^#]*['\" ]vchat(\[[^\]]*\])?['\" ]?(\s|$)", line), line
    name = _project_name()
    own = [line for line in installs if re.search(r"pip install[^#]*(\s-e \.|\s\.[\s\[\"']|\.whl|\s\.$)", line)]
    assert own, "the README installs this checkout somewhere"
    assert name in readme, "the README says what the distribution is called"
    ray = (ROOT / "src" / "vchat" / "batch" / "ray_runner.py").read_text(encoding="utf-8")
    assert "'vchat[ray]'" not in ray
