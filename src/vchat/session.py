"""One conversation: history, image store, agent and transcript; the ToolContext tools run in."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from vchat import __version__
from vchat.agent import Agent, Step, run_tool
from vchat.chat import history
from vchat.chat.binding import bind_input, bind_named
from vchat.chat.history import Turn
from vchat.chat.vision import Vision
from vchat.config import Settings
from vchat.errors import Cancelled, NoModelError, VchatError
from vchat.llm.base import LLM, Message
from vchat.store.files import is_whole_png
from vchat.store.images import ImageRef, ImageStore
from vchat.store.transcript import TRANSCRIPT_NAME, SessionLock, Transcript, read_records
from vchat.tools.base import Tool

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# A token that ends in an image extension; the path may start earlier (spaces in names).
_IMAGE_TOKEN = re.compile(r"[^\s\"'`]*\.(?:png|jpe?g|webp|bmp|gif|tiff?)(?=$|[\s\"'`,;:!?)])", re.IGNORECASE)
_QUOTED = re.compile(r"(['\"`])(.+?)\1")

ProgressHook = Callable[[int, int, str], None]


def new_session_id() -> str:
    """Sortable, unique enough for one user's folder: date, time and 4 random hex digits."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _as_path(text: str) -> Path | None:
    text = text.strip().lstrip("@").rstrip(".,;:!?)")
    text = text.replace("\\ ", " ")
    if not text or not text.lower().endswith(IMAGE_SUFFIXES):
        return None
    path = Path(os.path.expanduser(text))
    return path if path.is_file() else None


def find_image_paths(text: str) -> list[tuple[str, Path]]:
    """Image files a user typed in a message: (the text as typed, the path), in order.

    Quoted paths, `@path`, `~`, escaped spaces, and unquoted paths with spaces (the longest
    span of words ending in an image extension that exists on disk) are all recognised.
    """
    found: list[tuple[int, str, Path]] = []
    taken: list[tuple[int, int]] = []
    for match in _QUOTED.finditer(text):
        path = _as_path(match.group(2))
        if path is not None:
            found.append((match.start(), match.group(0), path))
            taken.append(match.span())
    for match in _IMAGE_TOKEN.finditer(text):
        if any(a <= match.start() < b for a, b in taken):
            continue
        end = match.end()
        # Try longer spans to the left first, so "My Photos/cat.png" beats "Photos/cat.png".
        starts = [m.end() for m in re.finditer(r"\s+", text[: match.start()])][-5:]
        best: tuple[str, Path] | None = None
        for start in [*starts, match.start()]:
            raw = text[start:end]
            path = _as_path(raw)
            if path is not None:
                best = (raw.rstrip(".,;:!?)"), path)
                break
        if best is not None:
            found.append((end - len(best[0]), *best))
            taken.append((end - len(best[0]), end))
    return [(typed, path) for _, typed, path in sorted(found, key=lambda item: item[0])]


class Session:
    """A conversation with its images and transcript; implements ToolContext for the tools."""

    def __init__(
        self,
        settings: Settings,
        tools: Sequence[Tool],
        llm: LLM | None = None,
        *,
        session_id: str | None = None,
        models: Any = None,
        listed: bool = True,
    ) -> None:
        self.settings = settings
        self.listed = listed  # False: kept out of the sessions index (a batch's per-image sessions)
        self.id = session_id or new_session_id()
        self.folder = (settings.out_dir / self.id).resolve()
        self.store = _store(self.folder, settings)
        self.transcript = Transcript(self.folder / TRANSCRIPT_NAME)
        self.tools = {tool.name: tool for tool in tools}
        self.llm = llm
        # Every earlier turn (finished, failed or interrupted); `history` is what the model gets of them.
        self.turns: list[Turn] = []
        self.history: list[Message] = []
        # The protocol in use: settings.protocol until a fallback from "tools" to "react".
        self.protocol = settings.protocol
        self.cancel_event = threading.Event()
        self.on_progress: ProgressHook | None = None
        self.on_text: Callable[[str], None] | None = None
        # Called for each image the user attaches (the CLI wires caption-on-attach here).
        self.on_attach: Callable[[Session, ImageRef], None] | None = None
        self._models = models
        self._started = False
        self.indexed = True  # False when the sessions index could not be written (see session_index)
        self.created = False  # True once this process made the session's folder (not a resumed one)
        self._lock = SessionLock(self.folder)
        # What the running turn waits on: "model" (safe to abort at once) or "tool".
        self.phase = "idle"
        # Tool sources that cost something to list (external MCP servers start to say what they offer):
        # asked once, when the tools are first needed; their tools then join `tools`.
        self.deferred_tools: list[Callable[[], Sequence[Tool]]] = []
        # What close() stops besides the transcript (external MCP servers this session started).
        self.on_close: list[Callable[[], None]] = []

    def load_deferred_tools(self) -> None:
        """Bring in the tools of deferred sources (once each); a built-in name is never replaced."""
        while self.deferred_tools:
            for tool in self.deferred_tools.pop(0)():
                self.tools.setdefault(tool.name, tool)

    @property
    def llm(self) -> LLM | None:
        """The language model; set it to switch (`/model`)."""
        return self._llm

    @llm.setter
    def llm(self, value: LLM | None) -> None:
        self._llm = value
        # The built-in planner is a component of this session's runtime: one budget, never a second copy,
        # and the session's cancel flag stops its decoding within a token.
        bind = getattr(value, "bind_runtime", None)
        if bind is not None:
            bind(lambda: self.models, lambda: self.cancel_event.is_set())

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
        if self.on_progress is not None:
            self.on_progress(done, total, label)
        self.check_cancelled()

    def _loading_progress(self, done: int, total: int, label: str) -> None:
        # Loading weights is not cancellable midway (a half-moved module is useless), so no check here.
        if self.on_progress is not None:
            self.on_progress(done, total, label)

    def check_cancelled(self) -> None:
        """Raise Cancelled when the user pressed Ctrl-C during this turn."""
        if self.cancel_event.is_set():
            raise Cancelled("cancelled")

    @property
    def models(self) -> Any:
        """The visual model manager, created on first use (loading nothing yet)."""
        if self._models is None:
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

    def turn(self, text: str) -> Iterator[Step]:
        """Run one user message through the agent; every step is written to the transcript."""
        if self.llm is None:
            raise NoModelError("no language model is connected")
        text = text.strip()
        if not text:
            raise VchatError("empty message: type what you want done with the images")
        self._start()
        self.cancel_event.clear()
        self.load_deferred_tools()
        message, _ = self.attach_from_message(text)
        agent = Agent(
            self.llm,
            list(self.tools.values()),
            self,
            self.store,
            max_steps=self.settings.max_steps,
            max_format_retries=self.settings.max_format_retries,
            on_text=self.on_text,
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

    def vision(self) -> Vision | None:
        """How the planner is shown images this turn: `vision` on/off, or auto (the backend says it can see)."""
        mode, llm = self.settings.vision, self.llm
        if llm is None or mode == "off" or self.settings.vision_images == 0:
            return None
        if getattr(llm, "vision_refused", False):
            return None  # the server turned images down earlier in this session
        if mode == "auto" and not getattr(llm, "supports_vision", False):
            return None
        return Vision(self.settings.vision_max_side, self.settings.vision_images)

    def _record(self, step: Step) -> None:
        record = step.to_dict()
        self.transcript.write("step", **record)

    def run_tool(self, name: str, raw: str | None = None, named: Mapping[str, Any] | None = None) -> Step:
        """Run one tool directly (no model): `vchat run --tool` and the REPL's `/tool`."""
        if name not in self.tools:
            self.load_deferred_tools()
        tool = self.tools.get(name)
        if tool is None:
            raise VchatError(f"unknown tool {name!r}; run `vchat tools` to list them")
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
            while self.on_close:
                self.on_close.pop()()

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

    # -- resume ----------------------------------------------------------------------------
    @classmethod
    def resume(
        cls,
        settings: Settings,
        tools: Sequence[Tool],
        llm: LLM | None,
        session: str | None = None,
        *,
        mark: bool = True,
    ) -> tuple[Session, str | None]:
        """Reopen a session (default: the latest) with its history, handles and lineage back."""
        folder = find_session(settings.out_dir, session)
        self = cls(settings, tools, llm, session_id=folder.name)
        self.folder = folder.resolve()
        self._lock = SessionLock(self.folder)
        if mark:  # a session that will be written to is this process's alone until close()
            self._lock.acquire()
        try:
            records, warning = read_records(self.folder / TRANSCRIPT_NAME)
        except VchatError:
            self._lock.release()
            raise
        self.store = _store(self.folder, settings)
        self.transcript = Transcript(self.folder / TRANSCRIPT_NAME)
        self._started = True
        missing: list[str] = []
        pending: Turn | None = None
        for record in records:
            kind = record.get("type")
            if kind == "image":
                ref = ImageRef.from_dict(record["image"])  # validated by read_records
                self.store.reserve(ref.handle)  # a handle once given is never given again, file or not
                if _whole_image(ref.path):
                    self.store.restore(ref)
                    if ref.handle in missing:
                        missing.remove(ref.handle)
                elif ref.handle not in missing:
                    # Deleted, or (power loss before its sync) cut short: either way not an image to offer.
                    missing.append(ref.handle)
            elif kind == "user":
                if pending is not None:  # the process died during that turn
                    pending.close("interrupted")
                    self.turns.append(pending)
                sent = str(record.get("sent") or record.get("text") or "")
                pending = Turn(text=sent, content=str(record.get("content") or sent))
            elif kind in ("cancelled", "tool") and pending is not None:
                # A direct tool run (`/tool`) starts after the turn ended; its steps are not the model's.
                pending.close("interrupted")
                self.turns.append(pending)
                pending = None
            elif kind == "step" and pending is not None:
                if isinstance(record.get("record"), str) and record["record"]:
                    pending.records.append(record["record"])
                if record.get("kind") in ("final", "error"):
                    pending.close(str(record["kind"]), str(record.get("text", "")))
                    self.turns.append(pending)
                    pending = None
        if pending is not None:
            pending.close("interrupted")
            self.turns.append(pending)
        self.history = history.messages(self.turns, settings.history_budget, self.protocol)
        # Image files the transcript lost (a crash between the file and its line) still hold their numbers.
        self.store.reserve_from_folder()
        if missing:
            shown = f"{', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}"
            note = f"{shown} missing from {self.folder} (deleted, or cut short by a power loss)"
            warning = f"{warning}; {note}" if warning else note
        if mark:  # listing a session (vchat images) must not change it
            self.store.remove_stale_temporaries()
            self.transcript.write("resumed")
        return self, warning


def _store(folder: Path, settings: Settings) -> ImageStore:
    return ImageStore(folder, settings.max_image_pixels, settings.png_compression)


def _whole_image(path: Path) -> bool:
    """An image file a resumed session may offer: present, and for PNGs complete from signature to end."""
    return is_whole_png(path) if path.suffix.lower() == ".png" else path.is_file()


def find_session(out_dir: Path, name: str | None) -> Path:
    """The folder of a session by id (or unique prefix), or the latest when name is None.

    Sessions under `out_dir` and those in the sessions index (any folder) are all candidates.
    """
    from vchat.store.index import all_sessions

    sessions = all_sessions(out_dir)
    if not sessions:
        raise VchatError(f"no sessions yet (none in {out_dir} or the sessions index); start one with `vchat`")
    if name is None:
        return sessions[0]
    candidate = Path(name).expanduser()
    if (candidate / TRANSCRIPT_NAME).is_file():
        return candidate
    matches = [p for p in sessions if p.name.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise VchatError(f"no session {name!r}; run `vchat sessions` to list them")
    raise VchatError(f"{name!r} matches {len(matches)} sessions; give more of the id")
