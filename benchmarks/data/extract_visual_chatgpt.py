"""Rebuild benchmarks/data/visual_chatgpt_prompt.json from a copy of microsoft/TaskMatrix's visual_chatgpt.py.

    git clone https://github.com/microsoft/TaskMatrix
    python benchmarks/data/extract_visual_chatgpt.py TaskMatrix/visual_chatgpt.py

Reads the file with `ast` (nothing of it is run): the English PREFIX, FORMAT_INSTRUCTIONS and
SUFFIX constants and the name/description of every `@prompts(...)` tool decorator, in file order.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).with_name("visual_chatgpt_prompt.json")
CONSTANTS = ("VISUAL_CHATGPT_PREFIX", "VISUAL_CHATGPT_FORMAT_INSTRUCTIONS", "VISUAL_CHATGPT_SUFFIX")


def extract(path: Path) -> dict[str, object]:
    """The prompt pieces of visual_chatgpt.py."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pieces: dict[str, str] = {}
    tools: list[dict[str, str]] = []
    # Breadth-first: the module constants, then the classes' methods in file order.
    for node in ast.walk(tree):
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.Assign) and isinstance(target, ast.Name) and target.id in CONSTANTS:
            pieces[target.id] = ast.literal_eval(node.value)
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "prompts":
                    args = {kw.arg: ast.literal_eval(kw.value) for kw in deco.keywords}
                    tools.append({"name": args["name"], "description": args["description"]})
    commit = subprocess.run(
        ["git", "-C", str(path.parent), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "source": "https://github.com/microsoft/TaskMatrix/blob/main/visual_chatgpt.py",
        "commit": commit or None,
        "how": "ast.literal_eval of the English PREFIX/FORMAT_INSTRUCTIONS/SUFFIX and each @prompts(name, description)",
        "prefix": pieces["VISUAL_CHATGPT_PREFIX"],
        "format_instructions": pieces["VISUAL_CHATGPT_FORMAT_INSTRUCTIONS"],
        "suffix": pieces["VISUAL_CHATGPT_SUFFIX"],
        "tools": tools,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(extract(Path(sys.argv[1])), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
