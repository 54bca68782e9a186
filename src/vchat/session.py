"""One conversation: history, image store, agent and transcript; the ToolContext tools run in."""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from vchat import __version__
from vchat.agent import Agent
from vchat.chat import history
from vchat.chat.binding import bind_input, bind_named
from vchat.chat.calls import find_tool
from vchat.chat.history import Turn
from vchat.chat.paths import find_image_paths
from vchat.chat.steps import Step, run_tool
from vchat.chat.vision import Vision
from vchat.config import Settings
from vchat.errors import Cancelled, NoModelError, VchatError
from vchat.llm.base import LLM, Message
from vchat.store.images import ImageRef, ImageStore
from vchat.store.transcript import TRANSCRIPT_NAME, SessionLock, Transcript
from vchat.tools.base import Tool
from vchat.tools.sources import ToolSources

if TYPE_CHECKING:
    from vchat.runtime.manager import ModelManager

ProgressHook = Callable[[int, int, str], None]


def new_session_id() -> str:
    """Sortable, unique enough for one user's folder: date, time and 4 random hex digits."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Observers:
    """Who is told what happens during one turn or tool call: streamed model text, progress, attached images."""

    text: Callable[[str], None] | None = None
    progress: ProgressHook | None = None
    attach: Callable[[ImageRef], None] | None = None


@dataclass(frozen=True)
class Reopened:
    """What `resume` rebuilt from a session's folder, handed to `Session` so it is built once."""

    folder: Path
    store: ImageStore
    lock: SessionLock
    turns: list[Turn]


class Session:
    """A conversation with its images and transcript; implements ToolContext for the tools."""

    def __init__(
        self,
        settings: Settings,
        tools: Sequence[Tool],
        llm: LLM | None = None,
        *,
        session_id: str | None = None,
        models: ModelManager | None = None,
        listed: bool = True,
        reopened: Reopened | None = None,
    ) -> None:
        self.settings = settings
        self.listed = listed  # False: kept out of the sessions index (a batch's per-image sessions)
        if reopened is not None:
            self.id = reopened.folder.name
            self.folder = reopened.folder
            self.store = reopened.store
            self._lock = reopened.lock
        else:
            self.id = session_id or new_session_id()
            self.folder = (settings.out_dir / self.id).resolve()
            self.store = _store(self.folder, settings)
            self._lock = SessionLock(self.folder)
        self.transcript = Transcript(self.folder / TRANSCRIPT_NAME)
        self.tools = {tool.name: tool for tool in tools}
        self.sources = ToolSources(self.tools)  # tools listed when first needed (MCP servers); close() stops them
        self.llm = llm
        # The protocol in use: settings.protocol until a fallback from "tools" to "react".
        self.protocol = settings.protocol
        # Every earlier turn (finished, failed or interrupted); `history` is what the model gets of them.
        self.turns: list[Turn] = list(reopened.turns) if reopened is not None else []
        self.model_choice: dict[str, str | None] | None = None  # what /model chose, for --resume
        self.history: list[Message] = history.messages(self.turns, settings.history_budget, self.protocol)
        self.cancel_event = threading.Event()
        # The session's own hook for each image the user attaches (the CLI wires caption-on-attach here).
        self.on_attach: Callable[[Session, ImageRef], None] | None = None
        # Who is told about the running turn or tool call; passed to turn() / run_tool(), reset after it.
        self._observers = Observers()
        self._models = models
        self._started = reopened is not None  # a reopened session's folder, lock and transcript exist already
        self.indexed = True  # False when the sessions index could not be written (see store.index)
        self.created = False  # True once this process made the session's folder (not a resumed one)
        # What the running turn waits on: "model" (safe to abort at once) or "tool".
        self.phase = "idle"

    @property
    def llm(self) -> LLM | None:
        """The language model; set it to switch (`/model`)."""
        return self._llm

    @llm.setter
    def llm(self, value: LLM | None) -> None:
        self._llm = value
        # The built-in planner is a component of this session's runtime: one budget, never a second copy,
        # and the session's cancel flag stops its decoding within a token.
        if value is not None:
            value.bind_runtime(lambda: self.models, lambda: self.cancel_event.is_set())

    # -- ToolContext -----------------------------------------------------------------------
    def load_image(self, ref: ImageRef) -> Image.Image:
        """Open a known image for a tool."""
        return self.store.load(ref)

    def save_image(
        self,
        image: Image.Image,
        *,
        tool: str,
        params: Mapping[str, Any],
        parents: tuple[str, ...],
        seed: int | None = None,
    ) -> ImageRef:
        """Write a tool's output into the session folder and record it in the transcript."""
        self._start()
        ref = self.store.save(image, tool=tool, params=params, parents=parents, seed=seed)
        self.transcript.write("image", image=ref.to_dict())
        return ref

    def progress(self, done: int, total: int, label: str) -> None:
        """Forward a tool's progress to the UI; also where a cancelled turn stops."""
        if self._observers.progress is not None:
            self._observers.progress(done, total, label)
        self.check_cancelled()

    def _loading_progress(self, done: int, total: int, label: str) -> None:
        # Loading weights is not cancellable midway (a half-moved module is useless), so no check here.
        if self._observers.progress is not None:
            self._observers.progress(done, total, label)

    def check_cancelled(self) -> None:
        """Raise Cancelled when the user pressed Ctrl-C during this turn."""
        if self.cancel_event.is_set():
            raise Cancelled("cancelled")

    @property
    def models(self) -> ModelManager:
        """The visual model manager, created on first use (loading nothing yet)."""
        if self._models is None:
            self._loading_progress(0, 0, "loading models…")  # importing torch takes seconds: say so
            from vchat.runtime import ModelManager

            self._models = ModelManager.from_settings(self.settings, progress=self._loading_progress)
        return self._models

    # -- the session's life ------------------------------------------------------------------
    def _start(self) -> None:
        if self._started:
            return
        # A new session's folder holds only what this process wrote: on failure it can all go.
        fresh = not self.transcript.path.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
            if not self.transcript.path.exists():
                self.transcript.write(
                    "session",
                    id=self.id,
                    version=__version__,
                    model=self.llm.name if self.llm is not None else None,
                    cwd=str(Path.cwd()),
                    **({"choice": self.model_choice} if self.model_choice else {}),
                )
        except (OSError, VchatError) as exc:
            # A full disk (or a read-only folder) at the very start: one line, and no empty session left
            # behind for `--resume` to pick as the latest.
            self.transcript.close()
            self._lock.release()
            if fresh:
                shutil.rmtree(self.folder, ignore_errors=True)
            if isinstance(exc, VchatError):
                raise
            raise VchatError(f"cannot write the session folder {self.folder}: {exc.strerror or exc}") from None
        self._started = True
        self.created = True
        from vchat.store.index import register

        # Listed in the user data folder, so `vchat sessions` and `--resume ID` work from any folder.
        self.indexed = register(self.id, self.folder) if self.listed else False

    def attach(self, path: str | Path, *, source: str | None = None) -> ImageRef:
        """Attach a user's image (the user's decision: any path they type is allowed)."""
        ref = self.store.attach(path, source=source)  # validates first: a bad path must not start an empty session
        self._start()
        if self.on_attach is not None:
            self.on_attach(self, ref)
        if self._observers.attach is not None:
            self._observers.attach(ref)
        self.transcript.write("image", image=ref.to_dict())
        return ref

    def attach_from_message(self, text: str) -> tuple[str, list[ImageRef]]:
        """Attach image paths typed in a message; the model sees handles in their place."""
        refs: list[ImageRef] = []
        for typed, path in find_image_paths(text):
            ref = self.attach(path)
            refs.append(ref)
            text = text.replace(typed, ref.handle, 1)
        return text, refs

    @contextmanager
    def observed(self, observers: Observers | None) -> Iterator[None]:
        """Tell `observers` what happens until the block ends (a turn, a tool call, an MCP request).

        None keeps whoever is observing already (a tool call inside an observed request).
        """
        previous = self._observers
        if observers is not None:
            self._observers = observers
        try:
            yield
        finally:
            self._observers = previous

    def turn(self, text: str, observers: Observers | None = None) -> Iterator[Step]:
        """Run one user message through the agent; every step is written to the transcript."""
        with self.observed(observers):
            yield from self._turn(text)

    def _turn(self, text: str) -> Iterator[Step]:
        if self.llm is None:
            raise NoModelError("no language model is connected")
        text = text.strip()
        if not text:
            raise VchatError("empty message: type what you want done with the images")
        self._start()
        self.cancel_event.clear()
        message, _ = self.attach_from_message(text)
        agent = Agent(
            self.llm,
            list(self.sources.tools().values()),
            self,
            self.store,
            max_steps=self.settings.max_steps,
            max_format_retries=self.settings.max_format_retries,
            on_text=self._observers.text,
            protocol=self.protocol,
            vision=self.vision(),
        )
        # The message exactly as sent is recorded, so --resume sends the same bytes.
        content = agent.user_content(message)
        self.transcript.write("user", text=text, sent=message, content=content)
        turn = Turn(text=message, content=content)
        try:
            self.phase = "model"
            for step in agent.run_turn(message, self.history, content=content):
                # After an action step is consumed, the agent runs that tool.
                self.phase = "tool" if step.kind == "action" else "model"
                # Its images are whole on disk already (renamed into place); their syncs run behind.
                self._record(step)
                if step.record:
                    turn.records.append(step.record)
                if step.kind in ("final", "error"):
                    turn.close(step.kind, step.text)
                yield step
        except (Cancelled, KeyboardInterrupt):
            self.transcript.write("cancelled")
            raise
        finally:
            self.phase = "idle"
            # Cancelled, killed by an exception, or abandoned by the caller: kept as interrupted.
            turn.close("interrupted")
            if agent.protocol != self.protocol:  # fell back to the text protocol: for the rest of the session
                self.protocol = agent.protocol
            self._remember(turn)
            self._commit()

    def _remember(self, turn: Turn) -> None:
        self.turns.append(turn)
        self.history = history.messages(self.turns, self.settings.history_budget, self.protocol)

    def forget(self, last: bool) -> int:
        """`/undo` (the last turn) or `/clear` (all), recorded for --resume; how many went (images stay)."""
        gone = min(1, len(self.turns)) if last else len(self.turns)
        if gone:
            del self.turns[len(self.turns) - gone :]
            self.history = history.messages(self.turns, self.settings.history_budget, self.protocol)
            self.transcript.write("undo" if last else "clear")
        return gone

    def vision(self) -> Vision | None:
        """How the planner is shown images this turn: `vision` on/off, or auto (the backend says it can see)."""
        mode, llm = self.settings.vision, self.llm
        if llm is None or mode == "off" or self.settings.vision_images == 0:
            return None
        if llm.vision_refused:
            return None  # the server turned images down earlier in this session
        if mode == "auto" and not llm.supports_vision:
            return None
        return Vision(self.settings.vision_max_side, self.settings.vision_images)

    def _record(self, step: Step) -> None:
        self.transcript.write("step", **step.to_dict())

    def run_tool(
        self,
        name: str,
        raw: str | None = None,
        named: Mapping[str, Any] | None = None,
        observers: Observers | None = None,
    ) -> Step:
        """Run one tool directly (no model): `vchat run --tool` and the REPL's `/tool`."""
        with self.observed(observers):
            return self._run_tool(name, raw, named)

    def _run_tool(self, name: str, raw: str | None, named: Mapping[str, Any] | None) -> Step:
        tool = find_tool(self.sources.tools(name), name)
        args = (
            bind_named(type(tool), named, self.store.resolve)
            if named is not None
            else bind_input(type(tool), raw or "", self.store.resolve)
        )
        # Only a valid call starts the session: a typo must not leave an empty session behind.
        self._start()
        self.cancel_event.clear()
        shown = raw if raw is not None else " ".join(f"{k}={v}" for k, v in (named or {}).items())
        self.transcript.write("tool", tool=name, input=shown)
        started = time.perf_counter()
        step = run_tool(tool, args, self, shown)
        step.seconds = time.perf_counter() - started
        self._record(step)
        self._commit()
        return step

    def _commit(self) -> None:
        """Make what was recorded so far durable, off the caller's path.

        The record of a step goes to the OS at once (a killed process loses nothing); forcing
        the images and then the transcript to disk, for power loss, runs in that order on the
        store's sync thread, so a transcript that survives a power loss never names an image
        that did not. `close()` waits for it.
        """
        self.store.commit_later(self.transcript.sync)

    def close(self) -> None:
        """Wait for pending disk syncs, sync the transcript, close it and let another vchat open the session."""
        try:
            self.store.flush()
            self.transcript.sync()
        finally:
            self.transcript.close()
            self._lock.release()
            self.sources.close()

    def came_to_nothing(self) -> bool:
        """True when this process made the session and nothing happened in it: no image, no step taken.

        Every message failed before the model took a step (a server that was down, a key that was wrong).
        """
        return (
            self.created
            and not len(self.store)
            and all(turn.ending == "error" and not turn.records for turn in self.turns)
        )

    def discard(self) -> bool:
        """Remove a session this process made when nothing came of it; True if removed.

        A session exists once something happened in it: a copy of the input and a failed call are
        not worth keeping, and would otherwise pile up in `vchat sessions` and be picked by `--resume`.
        """
        if not self.created or any(ref.tool is not None for ref in self.store):
            return False
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.indexed:
            from vchat.store.index import unregister

            unregister(self.id)
        return True


def _store(folder: Path, settings: Settings) -> ImageStore:
    return ImageStore(folder, settings.max_image_pixels, settings.png_compression)
