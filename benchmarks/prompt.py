"""Prompt cost and cache-friendliness: vchat's system prompt next to Visual ChatGPT's, and what each request adds.

    python benchmarks/prompt.py

Prints, in one run:
1. System-prompt tokens (o200k_base, `bpe-openai`, tables shipped with the package) for vchat
   (text ReAct and native tool calling) and for Visual ChatGPT's prompt, rebuilt from the
   pieces in benchmarks/data/visual_chatgpt_prompt.json (microsoft/TaskMatrix visual_chatgpt.py,
   commit cited there; extracted by benchmarks/data/extract_visual_chatgpt.py) the way
   LangChain 0.0.101's ConversationalAgent.create_prompt joins them: prefix, one
   "> name: description" line per tool, the format instructions (tool names filled in,
   ai_prefix "AI"), the suffix with empty history, input and scratchpad.
2. Tokens per tool and tokens added per tool step (the model's reply plus the observation).
3. A scripted 3-turn x 2-step session against the test server (real HTTP, real `openai`
   client), live and resumed before each later turn: for each request, its size, the byte
   offset of the first difference from the request before, the message it falls in, and
   whether the resumed session sent the very same bytes.
4. With vision on (`vision_images` = 3): one turn of 6 tool steps that each make an image,
   side by side for the window that dropped pixels one image at a time (vchat before) and
   the window that moves in blocks (now): images sent as pixels, bytes, and the first
   difference from the request before (inside earlier messages = the prefix cache misses).
5. External MCP servers' tools (a second `vchat mcp --tools transform` and tests/mcp_test_server.py): the
   prompt line each gets as `NAME__TOOL`, its tokens, and what they add to the whole prompt.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fake_openai, tests.helpers

import bpe_openai  # noqa: E402
from tests.fake_openai import FakeOpenAI, RecordedRequest  # noqa: E402
from tests.helpers import act, answer, write_photo  # noqa: E402

from vchat import agent as agent_module  # noqa: E402
from vchat.chat.prompts import system_prompt, tools_system_prompt  # noqa: E402
from vchat.chat.vision import DROPPED, windowed  # noqa: E402
from vchat.config import Settings  # noqa: E402
from vchat.llm.base import ContentPart, Message  # noqa: E402
from vchat.llm.openai_backend import OpenAIChat  # noqa: E402
from vchat.resume import resume_session  # noqa: E402
from vchat.session import Session  # noqa: E402
from vchat.tools.base import offered  # noqa: E402
from vchat.tools.registry import all_tools  # noqa: E402
from vchat.tools.schema import function_spec  # noqa: E402

ENC = bpe_openai.get_encoding("o200k_base")
DATA = Path(__file__).with_name("data") / "visual_chatgpt_prompt.json"

SCRIPT = [
    (
        "find the edges of img1 and mirror them",
        [act("detect_map", '{"image": "img1", "kind": "canny"}'), act("transform", '{"image": "img2", "op": "flip"}')],
        "Done: img2 has the edges, img3 is mirrored.",
    ),
    (
        "make it gray and turn it a quarter",
        [
            act("transform", '{"image": "img3", "op": "grayscale"}'),
            act("transform", '{"image": "img4", "op": "rotate", "degrees": 90}'),
        ],
        "img5 is the gray copy turned by 90 degrees.",
    ),
    (
        "crop the top left corner and halve it",
        [
            act("crop_image", '{"image": "img5", "left": 0, "top": 0, "right": 32, "bottom": 32}'),
            act("resize_image", '{"image": "img6", "scale": 0.5}'),
        ],
        "img7 is the halved corner.",
    ),
]


def tokens(text: str) -> int:
    """o200k_base tokens of a text."""
    return len(ENC.encode(text))


def visual_chatgpt_prompt() -> tuple[str, list[str]]:
    """Visual ChatGPT's system prompt as LangChain 0.0.101 built it, and its tool lines."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    lines = [f"> {t['name']}: {t['description']}" for t in data["tools"]]
    names = ", ".join(t["name"] for t in data["tools"])
    instructions = data["format_instructions"].format(tool_names=names, ai_prefix="AI", human_prefix="Human")
    suffix = data["suffix"].format(chat_history="", input="", agent_scratchpad="")
    return "\n\n".join([data["prefix"], "\n".join(lines), instructions, suffix]), lines


def vchat_prompt() -> tuple[str, list[str]]:
    """vchat's text-protocol system prompt and its tool lines."""
    tools = [type(t) for t in all_tools()]
    prompt = system_prompt(tools)
    names = {t.name for t in offered(tools)}
    lines = [line for line in prompt.splitlines() if line.split("(", 1)[0] in names]
    return prompt, lines


def run_session(folder: Path, resume_each_turn: bool) -> list[RecordedRequest]:
    """The scripted session over HTTP; with resume_each_turn, each later turn starts from `--resume`."""
    photo = write_photo(folder)
    replies = [reply for _, calls, final in SCRIPT for reply in [*calls, answer(final)]]
    settings = Settings(out_dir=folder / "out")
    with FakeOpenAI(replies) as fake:
        llm = OpenAIChat("fake-model", base_url=fake.url, max_retries=0)
        session = Session(settings, all_tools(), llm)
        session.attach(photo)
        for index, (text, _, _) in enumerate(SCRIPT):
            if index and resume_each_turn:
                session.close()
                # By id: "the latest session" comes from the user's session index, shared by every run.
                llm = OpenAIChat("fake-model", base_url=fake.url, max_retries=0)
                session, _ = resume_session(settings, all_tools(), llm, session.id)
            steps = list(session.turn(text))
            assert steps[-1].kind == "final", steps[-1]
        session.close()
        return fake.chat_requests


def per_image_window(messages: list[Message], keep: int) -> list[Message]:
    """The rule vchat had before: exactly the newest `keep` images as pixels (each new one drops the oldest)."""
    out: list[Message] = []
    seen = 0
    for message in reversed(messages):
        content = message["content"]
        if isinstance(content, str):
            out.append(message)
            continue
        parts: list[ContentPart] = []
        for part in reversed(content):
            if part.get("type") == "image_url":
                seen += 1
                if seen > keep:
                    part = {"type": "text", "text": f" {DROPPED}"}
            parts.append(part)
        out.append({**message, "content": list(reversed(parts))})
    return list(reversed(out))


VISION_STEPS = 6


def run_vision_turn(folder: Path, window: Any) -> list[RecordedRequest]:
    """One turn of VISION_STEPS image-making tool steps with vision on, the agent's window replaced by `window`."""
    photo = write_photo(folder)
    ops = ["flip", "grayscale", "flip", "grayscale", "flip", "grayscale"][:VISION_STEPS]
    calls = [act("transform", f'{{"image": "img{n + 1}", "op": "{op}"}}') for n, op in enumerate(ops)]
    original = agent_module.windowed
    agent_module.windowed = window  # type: ignore[assignment]
    try:
        with FakeOpenAI([*calls, answer("done")]) as fake:
            settings = Settings(out_dir=folder / "out", vision="on", vision_max_side=64)
            session = Session(settings, all_tools(), OpenAIChat("fake-model", base_url=fake.url, max_retries=0))
            session.attach(photo)
            steps = list(session.turn("six edits, checking each"))
            assert steps[-1].kind == "final", steps[-1]
            session.close()
            return fake.chat_requests
    finally:
        agent_module.windowed = original


def pixels_in(request: RecordedRequest) -> int:
    """Image parts a request carries."""
    return sum(
        1 for m in request.messages if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image_url"
    )


def vision_table(before: list[RecordedRequest], now: list[RecordedRequest]) -> None:
    """Side by side: images as pixels, bytes, first difference and whether it fell inside earlier messages."""
    print(f"\nvision on, vision_images = 3: one turn of {VISION_STEPS} tool steps that each make an image")
    print(f"  {'':5}{'per image (before)':^36}  {'in blocks (now)':^36}")
    head = f"{'px':>3} {'bytes':>8} {'1st diff':>9} {'where':>13}"
    print(f"  {'req':>3}  {head}  {head}")
    rewrites = {"before": 0, "now": 0}
    for index in range(len(now)):
        cells = []
        for name, requests in (("before", before), ("now", now)):
            request = requests[index]
            if index == 0:
                diff, place = "-", "-"
            else:
                previous = requests[index - 1]
                diff = f"{first_difference(previous.raw, request.raw):,}"
                kept = request.messages[: len(previous.messages)] == previous.messages
                place = "append" if kept else "EARLIER MSG"
                rewrites[name] += not kept
            cells.append(f"{pixels_in(request):>3} {len(request.raw):>8,} {diff:>9} {place:>13}")
        print(f"  {index + 1:>3}  {cells[0]}  {cells[1]}")
    total = len(now) - 1
    print(
        f"  requests that rewrote earlier messages: before {rewrites['before']} of {total}, "
        f"now {rewrites['now']} of {total}"
    )


def first_difference(a: bytes, b: bytes) -> int:
    """Byte offset of the first difference (the shorter length when one is a prefix of the other)."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def where(previous: RecordedRequest, current: RecordedRequest, scratch: int) -> str:
    """The previous request's message where the requests first differ, and whether it may change there.

    `scratch` is the index of the previous request's first step message (after its turn's user
    message): the system prompt, earlier turns and the user message before it must never change;
    a finished turn's steps are replaced by their compact record, which may.
    """
    old, new = previous.messages, current.messages
    index = next((i for i in range(min(len(old), len(new))) if old[i] != new[i]), min(len(old), len(new)))
    if index == len(old):
        return "after the previous request's last message (append)"
    verdict = "ok" if index >= scratch else "INSIDE EARLIER MESSAGES"
    return f"msg {index}: the finished turn's steps became its record: {verdict}"


def main() -> None:
    vcg, vcg_lines = visual_chatgpt_prompt()
    ours, our_lines = vchat_prompt()
    specs = json.dumps([function_spec(type(t)) for t in offered(all_tools())])
    native = tokens(tools_system_prompt()) + tokens(specs)

    print("system prompt, o200k_base tokens (bpe-openai)")
    print(f"  {'':34}{'vchat':>10}{'Visual ChatGPT':>16}")
    print(f"  {'whole system prompt':34}{tokens(ours):>10,}{tokens(vcg):>16,}")
    print(f"  {'tools offered':34}{len(our_lines):>10}{len(vcg_lines):>16}")
    per_ours = statistics.mean(tokens(line) for line in our_lines)
    per_vcg = statistics.mean(tokens(line) for line in vcg_lines)
    print(f"  {'tokens per tool (mean line)':34}{per_ours:>10.1f}{per_vcg:>16.1f}")
    print(f"  {'native tools: prompt + JSON specs':34}{native:>10,}{'n/a':>16}")
    print(f"  goal: <= 1,150 (half of 2,299); vchat/VCG = {tokens(ours) / tokens(vcg):.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        # Keep the benchmark's sessions out of the user's session index (platformdirs reads XDG_DATA_HOME).
        os.environ["XDG_DATA_HOME"] = str(Path(tmp) / "data")
        live = run_session(Path(tmp) / "live", resume_each_turn=False)
        resumed = run_session(Path(tmp) / "resumed", resume_each_turn=True)

    added: list[int] = []
    observations: list[int] = []
    print("\nscripted session: 3 turns x 2 tool steps, requests captured over HTTP")
    print(f"  {'req':>3} {'turn.step':>9} {'bytes':>7} {'1st diff':>9}  {'where':<68}{'live == resumed':>15}")
    per_turn = len(SCRIPT[0][1]) + 1
    # Index of each turn's first step message: its first request ends with the turn's user message.
    scratch = [len(live[t * per_turn].messages) for t in range(len(SCRIPT))]
    for index, request in enumerate(live):
        turn, step = divmod(index, per_turn)
        same = "yes" if request.raw == resumed[index].raw else "NO"
        if index == 0:
            diff, place = "-", "(first request)"
        else:
            previous = live[index - 1]
            diff = f"{first_difference(previous.raw, request.raw):,}"
            place = where(previous, request, scratch[(index - 1) // per_turn])
            if step:
                new = request.messages[len(previous.messages) :]
                added.append(sum(tokens(str(m["content"])) for m in new))
                observations.append(tokens(str(new[-1]["content"])))
        print(f"  {index + 1:>3} {turn + 1:>7}.{step + 1:<1} {len(request.raw):>7,} {diff:>9}  {place:<68}{same:>15}")
    identical = all(a.raw == b.raw for a, b in zip(live, resumed, strict=True)) and len(live) == len(resumed)
    print(f"  live and resumed requests identical: {'yes' if identical else 'NO'} ({len(live)} requests)")
    print(
        f"\ntokens added per tool step (reply + observation): mean {statistics.mean(added):.1f}, "
        f"min {min(added)}, max {max(added)}; the observation alone: mean {statistics.mean(observations):.1f}"
    )
    sample: Any = live[1].messages[-1]["content"]
    print(f"  e.g. observation: {sample!r}")

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_DATA_HOME"] = str(Path(tmp) / "data")
        before = run_vision_turn(Path(tmp) / "before", per_image_window)
        now = run_vision_turn(Path(tmp) / "now", windowed)
    vision_table(before, now)
    external_table()


def external_table() -> None:
    """What an external MCP server's tools add to the prompt: a second vchat's `transform`, the test server's 7."""
    from vchat.mcp_client import ExternalServers
    from vchat.mcp_config import McpServer

    # This folder holds benchmarks/mcp.py: on sys.path it would shadow the `mcp` SDK the client imports.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != here]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    servers = {
        "ext": McpServer("ext", [sys.executable, "-m", "vchat", "mcp", "--tools", "transform"], env=env),
        "t": McpServer("t", [sys.executable, str(ROOT / "tests" / "mcp_test_server.py")], env=env),
    }
    hub = ExternalServers(servers, warn=lambda line: print(f"  {line}"))
    try:
        external = [type(tool) for tool in hub.load()]
    finally:
        hub.close()
    base = [type(t) for t in all_tools()]
    prompt = system_prompt([*base, *external])
    lines = [line for line in prompt.splitlines() if "__" in line.split("(")[0]]
    print("\nexternal MCP servers' tools (NAME__TOOL), one prompt line each")
    for line in lines:
        print(f"  {tokens(line):>4}  {line[:100]}")
    added = tokens(prompt) - tokens(system_prompt(base))
    print(f"  whole prompt with them: {tokens(prompt):,} tokens (+{added} for {len(lines)} tools)")


if __name__ == "__main__":
    main()
