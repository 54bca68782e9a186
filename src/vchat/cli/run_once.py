"""`vchat run`: one message or one tool call, steps on stderr, answer or JSON on stdout."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from vchat.agent import Step
from vchat.errors import Cancelled, ToolInputError, UnknownImageError, UsageError, VchatError
from vchat.session import Session
from vchat.ui.progress import ProgressReporter
from vchat.ui.render import StepRenderer, for_user, print_error, print_warning
from vchat.ui.safe import safe_json, safe_line, safe_text

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_GAVE_UP = 0, 1, 2, 3
ToolInputs = Callable[[Session, str, "str | None", list[str], list[Any]], dict[str, Any]]


def _result(session: Session, steps: list[Step], final: str | None, error: str | None) -> dict[str, Any]:
    images = [
        {"handle": ref.handle, "path": str(ref.path), "tool": ref.tool, "parents": list(ref.parents)}
        for ref in session.store
    ]
    return {
        "final": final,
        "error": error,
        # null when the session never started (e.g. a full disk): there is nothing to resume.
        "session": session.id if session.transcript.path.exists() else None,
        "images": images,
        "steps": [
            {
                "kind": s.kind,
                "tool": s.tool,
                "input": s.input,
                "observation": s.observation if s.kind == "observation" else (s.text or None),
                "seconds": round(s.seconds, 4),
            }
            for s in steps
            if s.kind != "action"  # its tool and input are repeated in the observation step
        ],
    }


@dataclass(frozen=True)
class _Placeholder:
    """Stands for an input image while a call is checked, before any image is copied into a session."""

    handle: str


def _placeholders(count: int) -> list[Any]:
    return [_Placeholder(f"<input {n}>") for n in range(1, count + 1)]


def check_tool_inputs(session: Session, tool: str, named: dict[str, Any]) -> None:
    """Raise UsageError (exit 2: the command line is wrong) for a call that cannot run, saying how to fix it."""
    from vchat.chat.binding import bind_named, field_for_key

    if tool not in session.tools:
        session.load_deferred_tools()
    found = session.tools.get(tool)
    if found is None:
        raise UsageError(f"unknown tool {tool!r}; run `vchat tools` to list them")
    cls = type(found)
    given = {spec.name for spec in (field_for_key(cls, key) for key in named) if spec is not None}
    for spec in cls.inputs:
        if spec.required and spec.name not in given:
            how = {"image": "-i PATH", "text": f'the text, e.g. vchat run --tool {tool} "…"'}
            raise UsageError(f"{tool} needs {spec.name}: give {how.get(spec.kind, f'--arg {spec.name}=VALUE')}")

    def resolve(name: str) -> Any:
        # The images given with -i are checked already (open_image); a handle named in --arg must exist.
        if name.startswith("<input "):
            return name
        try:
            return session.store.resolve(name)
        except UnknownImageError:
            known = ", ".join(ref.handle for ref in session.store)
            where = f"this session has {known}" if known else "give files with -i PATH"
            raise UsageError(f"--arg: there is no image {name!r}; {where}") from None

    try:
        bind_named(cls, named, resolve)
    except ToolInputError as exc:  # the model hears these as observations; here the user typed them
        raise UsageError(str(exc)) from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_once(
    session: Session,
    prompt: str | None,
    *,
    images: list[Path],
    tool: str | None,
    args: list[str],
    as_json: bool,
    warning: str | None,
    tool_inputs: ToolInputs,
) -> int:
    """Run and report; returns the process exit code."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    on_image = None
    if not as_json and sys.stdout.isatty() and session.settings.preview != "none":
        from vchat.ui.inline import Previewer

        on_image = Previewer(Console(), session.settings.preview)
    renderer = StepRenderer(err, verbose=session.settings.verbose, show_final=False, on_image=on_image)
    if warning:
        print_warning(err, warning)
    notice = getattr(session.llm, "notice", None)
    first_use = notice() if callable(notice) else None
    if first_use:
        err.print(first_use, style="dim", markup=False)
    # SIGTERM from a batch runner should stop like Ctrl-C: finished work is already on disk.
    signal.signal(signal.SIGTERM, _interrupt)
    # Loading and denoising progress as bars on stderr (stdout keeps only the answer or JSON).
    progress = ProgressReporter(err) if err.is_terminal else None
    session.on_progress = progress
    steps: list[Step] = []
    final: str | None = None
    error: str | None = None
    code = EXIT_OK
    started = time.perf_counter()
    try:
        if tool is not None:
            # The whole call is checked before anything is made: a mistake leaves no session behind.
            check_tool_inputs(session, tool, tool_inputs(session, tool, prompt, args, _placeholders(len(images))))
        # Inside the try: attaching starts the session, and a full disk there is one line like any other.
        attached = [session.attach(path) for path in images]
        if tool is not None:
            named = tool_inputs(session, tool, prompt, args, attached)
            step = session.run_tool(tool, named=named)
            steps.append(step)
            if progress is not None:
                progress.stop()
            if not sys.stdout.isatty():  # at a terminal stdout already shows the result: once is enough
                renderer.step(step)
            final = for_user(step.observation) if step.observation is not None else None
            if final and final.startswith(f"{tool} failed:"):
                error, code = final, EXIT_ERROR
        else:
            assert prompt is not None
            for step in session.turn(prompt):
                steps.append(step)
                if progress is not None:
                    progress.stop()
                renderer.step(step)
                if step.kind == "final":
                    final = step.text
                elif step.kind == "error":
                    error = step.text
                    code = EXIT_GAVE_UP if step.reason in ("step_limit", "unreadable", "length") else EXIT_ERROR
    except (KeyboardInterrupt, Cancelled):
        if progress is not None:
            progress.stop()  # first: stopping a transient bar erases lines printed under it
        error, code = "cancelled; finished images and steps are saved", 130
        err.print(f"[yellow]{error}[/]")
    except VchatError as exc:
        if progress is not None:
            progress.stop()
        error, code = str(exc), EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
        print_error(err, error)
    finally:
        if progress is not None:
            progress.stop()
        session.close()
    # A tool call that failed made nothing worth keeping: no session folder, no entry in `vchat sessions`.
    # Nor did a message whose model failed at once (server down, no weights, no key): no step, no image.
    # (A killed or cancelled turn keeps its message for --resume: it never gets here, or ends with code 130.)
    unanswered = tool is None and code == EXIT_ERROR and not len(session.store)
    unanswered = unanswered and all(step.kind == "error" for step in steps)
    discarded = ((tool is not None and code != EXIT_OK) or unanswered) and session.discard()
    if as_json:
        result = _result(session, steps, final, error)
        if discarded or not session.folder.is_dir():
            result["session"] = None
        sys.stdout.write(safe_json(result) + "\n")
    else:
        if final is not None and tool is None:
            # The model's answer: control characters shown, never acted on, even when piped (it may be cat later).
            sys.stdout.write(safe_text(final.rstrip()) + "\n")
        elif final is not None:
            # One tool: its observation, then one `handle<TAB>path` line per new image.
            sys.stdout.write(safe_line(final.splitlines()[0] if final else "") + "\n")
            for ref in (ref for s in steps for ref in s.images):
                if on_image is not None:
                    sys.stdout.flush()
                    on_image(ref)  # the picture, then its handle and path under it
                sys.stdout.write(f"{ref.handle}\t{safe_line(ref.path)}\n")
        if session.folder.is_dir() and not discarded:
            where = escape(safe_line(session.folder))
            err.print(f"[dim]session {session.id} ({time.perf_counter() - started:.1f}s), files in {where}[/]")
    sys.stdout.flush()
    return code
