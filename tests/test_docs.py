"""The architecture notes live in the repository, the README points at them, and they name only real files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def test_readme_points_at_the_architecture_notes_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in readme
    assert "(docs/ARCHITECTURE.md)" in readme and DOC.is_file()


def test_every_file_the_notes_name_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"[\w./-]*\w\.py\b", text))
    assert len(named) > 20
    roots = (ROOT, ROOT / "src", ROOT / "src" / "vchat")
    missing = sorted(name for name in named if not any((root / name).is_file() for root in roots))
    assert not missing, f"docs/ARCHITECTURE.md names files that do not exist: {missing}"


def test_every_package_is_named_in_the_notes() -> None:
    text = DOC.read_text(encoding="utf-8")
    src = ROOT / "src" / "vchat"
    packages = sorted(p.name for p in src.iterdir() if p.is_dir() and any(p.glob("*.py")))
    assert len(packages) >= 10
    missing = [name for name in packages if f"{name}/" not in text]
    assert not missing, f"docs/ARCHITECTURE.md does not name these packages: {missing}"
