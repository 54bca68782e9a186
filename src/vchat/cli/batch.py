"""`vchat batch`: one tool or one request over files, folders and globs; here or on a Ray cluster."""

from __future__ import annotations

import gc
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vchat.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    fail_on,
    settings_from_flags,
    stderr,
    stop_on_sigterm,
)
from vchat.cli.options import BaseUrlOpt, ConfigOpt, LlmOpt, ModelOpt, TierOpt
from vchat.errors import UsageError, VchatError

if TYPE_CHECKING:
    from vchat.batch.job import Job

_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.\-]+:\d+)$")


def batch_argv(argv: list[str]) -> list[str]:
    """Give a bare `--ray` the value `auto`: the next token is its address only when it looks like one."""
    out: list[str] = []
    for i, token in enumerate(argv):
        out.append(token)
        if token == "--ray":
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is None or not _ADDRESS.match(following):
                out.append("auto")
    return out


def batch(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[REQUEST] INPUTS...",
            help="Without --tool: the request for every image, then the images. Files, folders (walked) or globs.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", metavar="DIR", help="Output folder (required); holds manifest.jsonl.")
    ] = None,
    tool: Annotated[
        str | None,
        typer.Option("--tool", "-t", metavar="NAME", help="Run this tool on every image (no language model)."),
    ] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", "-a", metavar="KEY=VALUE", help="Tool input KEY=VALUE (repeatable).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip inputs the manifest records as done.")] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="Run on Ray: auto (default: running cluster or a local one), local, or ADDRESS.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, metavar="N", help="Ray actors (default: one per GPU, else per CPU)."),
    ] = None,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=1, metavar="N", help="Agent mode: most tool calls per image.")
    ] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")] = False,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    llm: LlmOpt = None,
    tier: TierOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The same edit over many images: a manifest as it goes, --resume to finish, exit 4 if any image failed.

    Tool mode:  vchat batch --tool remove_background photos/ --out cut/
    Agent mode: vchat batch "make it look like winter" photos/*.jpg --out winter/
    """

    try:
        if out is None:
            raise UsageError("missing --out FOLDER: where the outputs and manifest.jsonl go")
        settings = settings_from_flags(config, model=model, base_url=base_url, llm=llm, tier=tier)
        from vchat.batch.runner import plan as make_plan
        from vchat.batch.runner import run_batch, run_local, validate
        from vchat.chat.binding import parse_arg_pairs as parse_args

        if tool is not None:
            from vchat.cli.tool_call import check_tool_call

            # The same lines as `vchat run --tool`: did-you-mean, --arg keys.
            check_tool_call(tool, list(arg or []), settings)
        job, inputs = _job(list(sources or []), tool, parse_args(list(arg or [])), max_steps)
        validate(settings, job)
        planned = make_plan(inputs, out, resume=resume)
        err = stderr()
        # SIGTERM (a job scheduler's stop) ends the batch like Ctrl-C: the manifest stays whole for --resume.
        stop_on_sigterm()
        if ray is not None:
            from vchat.batch.ray_runner import run_ray

            results = run_ray(settings, job, planned, ray, workers)
        else:
            results = run_local(settings, job, planned)
        from vchat.ui.batch_progress import BatchProgress

        # All that is loaded by now (modules, tools, settings, the plan) lives as long as the batch. Out of
        # the garbage collector's sight, its full passes stop walking it every few hundred images
        # (measured: ~1 ms per image of a fast tool, a tenth of its cost). Garbage made by then stays
        # until the process ends, which this command's process soon does.
        gc.freeze()
        with BatchProgress(err, len(planned.todo), planned.skipped) as bar:
            summary = run_batch(results, planned, on_result=lambda r: bar.advance(r.status == "done"))
    except VchatError as exc:
        if as_json:
            sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        fail_on(exc)
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict()) + "\n")
    else:
        from rich.markup import escape

        from vchat.ui.safe import safe_line

        for failure in summary.failures[:5]:
            # The error is text ("set [models] pix2pix to a folder" must keep its brackets), never markup.
            error, source = failure["error"], failure.get("input", "")
            said = error if not source or source in error else f"{source}: {error}"  # which image, always
            err.print(f"[red]failed:[/] {escape(safe_line(said))}", markup=True, highlight=False)
        err.print(summary.line(), markup=False, highlight=False)
    if summary.stopped and summary.stopped.startswith("interrupted"):
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary.stopped:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_SOME_FAILED if summary.failed else EXIT_OK)


def _job(sources: list[str], tool: str | None, args: dict[str, str], max_steps: int) -> tuple[Job, list[str]]:
    from vchat.batch.job import Job

    if tool is None:
        if len(sources) < 2:
            raise UsageError('give the request and the images, e.g. vchat batch "make it look like winter" photos/')
        return Job(prompt=sources[0], max_steps=max_steps), sources[1:]
    prompt = None
    # `--tool instruct_edit "make it winter" photos/`: a first word that is no file is the tool's text input.
    if sources and not _looks_like_input(sources[0]):
        prompt, sources = sources[0], sources[1:]
    if not sources:
        raise VchatError("no input images: give files, folders or globs")
    return Job(tool=tool, args=args, prompt=prompt, max_steps=max_steps), sources


def _looks_like_input(text: str) -> bool:
    from vchat.store.reading import IMAGE_SUFFIXES

    path = Path(text).expanduser()
    return path.exists() or "/" in text or path.suffix.lower() in IMAGE_SUFFIXES
