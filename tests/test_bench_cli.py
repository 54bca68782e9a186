"""`vchat bench` from the command line, and the bench over HTTP against the OpenAI-compatible test server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.fake_openai import FakeOpenAI, Reply
from tests.test_cli import vchat

from vchat.bench.capabilities import find_tool, offered_classes, session_classes
from vchat.bench.planners import plan_replies
from vchat.bench.report import as_json, select
from vchat.bench.runner import run_suite
from vchat.bench.suite import builtin_tasks
from vchat.config import Settings
from vchat.llm.openai_backend import OpenAIChat

TASKS = builtin_tasks()
TOOL_CLASSES = session_classes()  # what a chat session gets: capabilities, and families where they exist


def _reference_replies(patterns: str) -> list[str]:
    """The measured replies of every selected task's reference plan, in suite order (one model plays them all)."""
    return [r for t in select(TASKS, patterns) for r in plan_replies(t.reference, t.answer, TOOL_CLASSES)]


@pytest.mark.slow
def test_bench_over_http_scores_the_reference_and_takes_tokens_from_the_server(tmp_path: Path) -> None:
    tasks = select(TASKS, "chain,reference,trap")
    with FakeOpenAI(_reference_replies("chain,reference,trap")) as server:
        model = OpenAIChat("fake-model", base_url=server.url, api_key="k", stream=False, max_retries=0)
        runs = run_suite(tasks, model, Settings(out_dir=tmp_path), TOOL_CLASSES)
        assert len(server.chat_requests) == sum(len(t.reference) + 1 for t in tasks)
    report = as_json(runs, model=model.name, tools="stand-in")
    assert report["overall"]["pass_rate"] == 1.0, [t["reasons"] for t in report["tasks"] if not all(t["passed"])]
    # The test server reports usage (1 prompt token, 1 completion token per reply): counted, not estimated.
    assert report["tokens"] == "reported"
    assert sum(sum(t["tokens_in"]) for t in report["tasks"]) == len(server.chat_requests)


@pytest.mark.slow
def test_bench_over_http_with_native_tool_calls(tmp_path: Path) -> None:
    tasks = select(TASKS, "chain,failure")
    replies: list[str | Reply] = []
    for task in tasks:
        for step in task.reference:
            cls, selector = find_tool(step.capability, offered_classes(TOOL_CLASSES))
            replies.append(
                Reply("", tool_calls=[{"name": cls.name, "arguments": {**selector, **step.reference_args()}}])
            )
        replies.append(task.answer)
    with FakeOpenAI(replies) as server:
        model = OpenAIChat("fake-model", base_url=server.url, api_key="k", stream=False, max_retries=0)
        runs = run_suite(tasks, model, Settings(out_dir=tmp_path, protocol="tools"), TOOL_CLASSES)
        assert all("tools" in request.body for request in server.chat_requests)  # really the native protocol
    report = as_json(runs, model=model.name, tools="stand-in")
    assert report["overall"]["pass_rate"] == 1.0, [t["reasons"] for t in report["tasks"] if not all(t["passed"])]
    assert report["tokens"] == "reported"


@pytest.mark.slow
def test_bench_cli_against_a_server_prints_a_table(tmp_path: Path) -> None:
    with FakeOpenAI(_reference_replies("no-tool,cannot")) as server:
        out = vchat(tmp_path, "bench", "--base-url", server.url, "--model", "fake-model", "--filter", "no-tool,cannot")
    assert out.returncode == 0, out.stderr
    assert "fake-model" in out.stdout and "6 tasks" in out.stdout
    lines = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.strip()}
    assert lines["all"][1:3] == ["6", "100%"]
    assert lines["cannot"][1:3] == ["3", "100%"]
    assert "characters / 4" in out.stdout  # streamed replies carry no usage: the table says the count is estimated


def test_bench_cli_json_with_a_scripted_model(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(_reference_replies("plain/edit,plain/caption")))
    out = vchat(tmp_path, "bench", "--llm", f"scripted:{script}", "--filter", "plain/edit,plain/caption", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["overall"]["pass_rate"] == 1.0 and data["tools"] == "stand-in" and data["runs"] == 1
    assert [t["id"] for t in data["tasks"]] == ["caption", "edit"]
    assert data["tasks"][1]["calls"] == [["instruct_edit(edit)"]]
    assert set(data["categories"]) == {"plain"}
    # The bench's throwaway sessions stay out of the user's sessions index.
    from vchat.store.index import INDEX_NAME

    index = tmp_path / "xdg-data" / "vchat" / INDEX_NAME
    assert not index.exists() or not index.read_text().strip()


@pytest.mark.slow
def test_bench_cli_list_and_calibrate(tmp_path: Path) -> None:
    listed = vchat(tmp_path, "bench", "--list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == len(TASKS) >= 40
    calibrated = vchat(tmp_path, "bench", "--calibrate", "--filter", "failure", "--json")
    assert calibrated.returncode == 0, calibrated.stderr
    rates = {r["model"]: r["overall"]["pass_rate"] for r in json.loads(calibrated.stdout)}
    assert rates == {"reference plans": 1.0, "answer at once": 0.0, "random tool": 0.0}


@pytest.mark.slow
def test_bench_cli_errors_are_one_line(tmp_path: Path) -> None:
    unknown = vchat(tmp_path, "bench", "--filter", "no-such-task", "--calibrate")
    assert unknown.returncode == 1 and "no task matches" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    no_model = vchat(tmp_path, "bench", "--llm", "none")
    assert no_model.returncode == 1 and "no language model" in no_model.stderr
