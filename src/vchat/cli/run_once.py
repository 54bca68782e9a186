"""`vchat run`: one message or one tool call, steps on stderr, answer or JSON on stdout."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from vchat.chat.steps import Step
from vchat.cli.common import EXIT_ERROR, EXIT_GAVE_UP, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, stop_on_sigterm
from vchat.cli.extras import find_session_tool
from vchat.cli.tool_call import check_tool_inputs, placeholders, tool_inputs
from vchat.errors import Cancelled, UsageError, VchatError
from vchat.session import Observers, Session
from vchat.ui.progress import ProgressReporter
from vchat.ui.render import StepRenderer, print_error, print_warning
from vchat.ui.safe import safe_json, safe_line, safe_text


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


def run_once(
    session: Session,
    prompt: str | None,
    *,
    images: list[Path],
    tool: str | None,
    args: list[str],
    as_json: bool,
    warning: str | None,
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
    first_use = session.llm.notice() if session.llm is not None else None
    if first_use:
        err.print(first_use, style="dim", markup=False)
    from vchat.runtime.tiers import on_first_choice

    # `tier = "auto"` is sized when a tool first needs it; the choice and its reason are said then, once.
    on_first_choice(lambda line: err.print(line, style="dim", markup=False))
    # SIGTERM from a batch runner should stop like Ctrl-C: finished work is already on disk.
    stop_on_sigterm()
    # Loading and denoising progress as bars on stderr (stdout keeps only the answer or JSON).
    progress = ProgressReporter(err) if err.is_terminal else None
    steps: list[Step] = []
    final: str | None = None
    error: str | None = None
    code = EXIT_OK
    started = time.perf_counter()
    try:
        if tool is not None:
            # The whole call is checked before anything is made: a mistake leaves no session behind.
            cls = type(find_session_tool(session, tool))
            check_tool_inputs(session, cls, tool_inputs(cls, prompt, args, placeholders(len(images))))
        # Inside the try: attaching starts the session, and a full disk there is one line like any other.
        with session.observed(Observers(progress=progress)):  # a caption on attach may load weights
            attached = [session.attach(path) for path in images]
        if tool is not None:
            named = tool_inputs(cls, prompt, args, attached)
            step = session.run_tool(tool, named=named, observers=Observers(progress=progress))
            steps.append(step)
            if progress is not None:
                progress.stop()
            if not sys.stdout.isatty():  # at a terminal stdout already shows the result: once is enough
                renderer.step(step)
            final = step.text or None
            if step.failure is not None:
                error, code = step.text, EXIT_ERROR
        else:
            assert prompt is not None
            for step in session.turn(prompt, Observers(progress=progress)):
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
        error, code = "cancelled; finished images and steps are saved", EXIT_INTERRUPTED
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
            result["images"] = []  # their files went with the folder: a path here would name nothing
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
