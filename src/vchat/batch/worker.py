"""Runs a batch job over items in one process: models loaded once, decoding and writing overlapped with model work.

The same Worker runs the local batch and each Ray actor's shards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from vchat.batch.context import ItemContext, output_name
from vchat.batch.inputs import SESSIONS, Item
from vchat.batch.job import Job, named_inputs
from vchat.batch.manifest import Result
from vchat.batch.outputs import confined
from vchat.chat.binding import bind_named
from vchat.chat.calls import find_tool
from vchat.chat.steps import run_tool
from vchat.config import Settings
from vchat.errors import ImageError, VchatError
from vchat.store.files import encode_png, link_or_copy, write_atomic
from vchat.store.images import open_image
from vchat.tools.base import Tool
from vchat.userfiles import shown


def io_threads() -> int:
    """Threads for decoding and for encoding: a few, whatever the machine (memory stays bounded)."""
    return max(2, min(4, os.cpu_count() or 2))


@dataclasses.dataclass
class _Pending:
    """One image whose tool has run; done when its outputs are written."""

    result: Result
    writes: list[Future[tuple[str, bytes | None]]]
    started: float
    work: float

    def done(self) -> bool:
        return all(w.done() for w in self.writes)

    def finish(self) -> Result:
        blobs: dict[str, bytes] = {}
        errors = []
        for write in self.writes:
            try:
                relative, data = write.result()
            except OSError as exc:
                errors.append(f"cannot write {shown(exc.filename or 'output')}: {exc.strerror or exc}")
                continue
            except VchatError as exc:
                errors.append(str(exc))
                continue
            if data is not None:
                blobs[relative] = data
        if errors:
            self.result.status, self.result.error = "failed", errors[0]
        self.result.blobs = blobs or None
        return self.result


class Worker:
    """Holds the tools, one model manager and (agent mode) one language model for a whole batch."""

    def __init__(self, settings: Settings, job: Job, out: Path, *, emit_bytes: bool = False, name: str | None = None):
        from vchat.tools.registry import all_tools

        self.settings = settings
        self.job = job
        self.out = out
        self.emit_bytes = emit_bytes  # Ray without shared storage: return PNG bytes, the driver writes them
        self.name = name
        self.tools: dict[str, Tool] = {tool.name: tool for tool in all_tools()}
        from vchat.plugins.extras import extra_tools

        # Plugins, and the external MCP servers' tools when the job may call them (the model, or NAME__TOOL).
        servers = not job.tool or "__" in job.tool
        extra, self.tool_failures, self._stop_servers = extra_tools(settings, servers=servers)
        for tool in extra:
            self.tools.setdefault(tool.name, tool)
        self.png = settings.png_compression
        self.stop = threading.Event()
        threads = io_threads()
        self._decoder = ThreadPoolExecutor(threads, thread_name_prefix="vchat-decode")
        self._writer = ThreadPoolExecutor(threads, thread_name_prefix="vchat-write")
        self._ahead = threads * 2  # decoded images waiting for the model: bounded memory
        self._slots = threading.BoundedSemaphore(threads * 2)  # outputs waiting to be written
        self._models: Any = None
        self._llm: Any = None
        self._scratch: Path | None = None

    # -- shared state ----------------------------------------------------------------------
    def models(self) -> Any:
        """The one ModelManager of this worker, made on first use."""
        if self._models is None:
            from vchat.runtime import ModelManager

            self._models = ModelManager.from_settings(self.settings)
        return self._models

    def close(self) -> None:
        """Finish queued writes and stop the thread pools."""
        self._decoder.shutdown(wait=True, cancel_futures=True)
        self._writer.shutdown(wait=True)
        self._stop_servers()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def run(self, items: Iterable[Item], data: Mapping[str, bytes] | None = None) -> Iterator[Result]:
        """Results in input order, each yielded once its outputs are written (or returned as bytes)."""
        if self.job.tool:
            if self.job.tool not in self.tools and self.tool_failures:  # an external server that did not start
                raise VchatError("; ".join(self.tool_failures))
            yield from self._run_tool(find_tool(self.tools, self.job.tool), items, data or {})
        else:
            yield from self._run_agent(items, data or {})

    # -- reading -------------------------------------------------------------------------------
    def _local_path(self, item: Item, data: Mapping[str, bytes]) -> Path:
        """The input as a file here: its own path, or the bytes the driver sent written to scratch."""
        blob = data.get(item.input)
        if blob is None:
            return Path(item.input)
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="vchat-batch-"))
        path = self._scratch / f"{abs(hash(item.input))}{Path(item.input).suffix}"
        path.write_bytes(blob)
        return path

    def _decode(self, item: Item, data: Mapping[str, bytes]) -> tuple[Image.Image, float]:
        started = time.perf_counter()
        path = self._local_path(item, data)
        try:
            image, _ = open_image(path, self.settings.max_image_pixels)
        except ImageError as exc:
            # Name the user's file, not a scratch copy.
            raise ImageError(str(exc).replace(str(path), item.input)) from None
        finally:
            if path != Path(item.input):
                path.unlink(missing_ok=True)
        return image, time.perf_counter() - started

    # -- writing -------------------------------------------------------------------------------
    def _write(self, relative: str, image: Image.Image, record: dict[str, Any]) -> Future[tuple[str, bytes | None]]:
        self._slots.acquire()  # the model waits here only when the writers are behind
        try:
            return self._writer.submit(self._encode_and_write, relative, image, record)
        except BaseException:
            self._slots.release()
            raise

    def _encode_and_write(self, relative: str, image: Image.Image, record: dict[str, Any]) -> tuple[str, bytes | None]:
        try:
            data = encode_png(image, record, self.png)
            if self.emit_bytes:
                return relative, data
            # Whole or absent under its name; not synced per file (see manifest.is_done: resume checks them).
            write_atomic(confined(self.out, relative), data, durable=False)
            return relative, None
        finally:
            self._slots.release()

    # -- tool mode -------------------------------------------------------------------------------
    def _run_tool(self, tool: Tool, items: Iterable[Item], data: Mapping[str, bytes]) -> Iterator[Result]:
        named = named_inputs(tool, self.job)
        shown = " ".join(f"{k}={v}" for k, v in named.items())
        queue = iter(items)
        window: deque[tuple[Item, Future[tuple[Image.Image, float]]]] = deque()
        inflight: deque[_Pending] = deque()

        def fill() -> None:
            while len(window) < self._ahead and not self.stop.is_set():
                item = next(queue, None)
                if item is None:
                    return
                window.append((item, self._decoder.submit(self._decode, item, data)))

        fill()
        while window and not self.stop.is_set():
            item, decoding = window.popleft()
            fill()
            inflight.append(self._one_tool(tool, named, shown, item, decoding))
            while inflight and inflight[0].done():
                yield self._finish(inflight.popleft())
        for pending in inflight:
            yield self._finish(pending)

    def _one_tool(
        self, tool: Tool, named: dict[str, Any], shown: str, item: Item, decoding: Future[tuple[Image.Image, float]]
    ) -> _Pending:
        started = time.perf_counter()
        result = Result(item.input, "failed", worker=self.name)
        try:
            image, decode_seconds = decoding.result()
        except VchatError as exc:
            result.error = str(exc)
            return _Pending(result, [], started, 0.0)
        ctx = ItemContext(self.settings, self.models, item, image, self.out, self._write, cancelled=self.stop.is_set)
        try:
            args = bind_named(type(tool), named, ctx.resolve)
        except VchatError as exc:
            result.error = str(exc)
            return _Pending(result, [], started, decode_seconds)
        step = run_tool(tool, args, ctx, shown)
        result.text = step.text  # the tool's own words: the outputs are listed apart
        result.outputs = list(ctx.outputs)
        result.seed = ctx.seed
        if step.failure is not None:
            result.error = step.text
        else:
            result.status = "done"
        return _Pending(result, ctx.writes, started, decode_seconds)

    def _finish(self, pending: _Pending) -> Result:
        result = pending.finish()
        # The model's time plus decoding (done ahead, on another thread) up to the last byte written.
        result.seconds = pending.work + time.perf_counter() - pending.started
        return result

    # -- agent mode ------------------------------------------------------------------------------
    def _run_agent(self, items: Iterable[Item], data: Mapping[str, bytes]) -> Iterator[Result]:
        if self._llm is None:
            from vchat.llm.select import connect_hint, select_llm

            self._llm = select_llm(self.settings)
            if self._llm is None:
                raise VchatError(f"agent mode needs a language model; {connect_hint()}, or use --tool NAME")
        for item in items:
            if self.stop.is_set():
                return
            yield self._one_agent(item, data)

    def _sessions_dir(self) -> Path:
        if not self.emit_bytes:
            return self.out / SESSIONS
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="vchat-batch-"))
        return self._scratch / SESSIONS

    def _one_agent(self, item: Item, data: Mapping[str, bytes]) -> Result:
        from vchat.session import Session

        started = time.perf_counter()
        result = Result(item.input, "failed", worker=self.name)
        settings = dataclasses.replace(
            self.settings, out_dir=self._sessions_dir(), max_steps=self.job.max_steps, png_compression=self.png
        )
        session_id = session_name(item.name)
        folder = settings.out_dir / session_id
        if folder.is_symlink():  # planted: remove the link itself, never what it points at
            folder.unlink()
        elif folder.exists():  # an attempt that did not finish (the batch was stopped): start the image over
            shutil.rmtree(folder)
        session = Session(
            settings, list(self.tools.values()), self._llm, session_id=session_id, models=self.models(), listed=False
        )
        session.cancel_event = self.stop
        if not self.emit_bytes:
            result.session = f"{SESSIONS}/{session_id}"
        path = self._local_path(item, data)
        try:
            try:
                session.attach(path)
            except ImageError as exc:
                result.error = str(exc).replace(str(path), item.input)
                return result
            assert self.job.prompt is not None
            final: str | None = None
            for step in session.turn(self.job.prompt):
                if step.kind == "final":
                    final = step.text
                elif step.kind == "error":
                    result.error = step.text
        finally:
            session.close()
            if path != Path(item.input):
                path.unlink(missing_ok=True)
            result.seconds = time.perf_counter() - started
        if final is None:
            result.error = result.error or "the model gave no answer"
            return result
        made = [ref for ref in session.store if ref.tool]
        named = [ref for ref in made if ref.handle in set(_handles(final))]
        chosen = named or made[-1:]
        if not chosen:
            # A batch is for images: an answer alone is not the work done, and --resume must try it again.
            result.text = final
            result.error = "the model answered without making an image"
            return result
        blobs: dict[str, bytes] = {}
        for number, ref in enumerate(chosen, start=1):
            relative = output_name(item, number)
            if self.emit_bytes:
                blobs[relative] = ref.path.read_bytes()
            else:
                link_or_copy(
                    ref.path, confined(self.out, relative)
                )  # the session's file, published under the input's name
            result.outputs.append(relative)
        result.status, result.text = "done", final
        result.seed = next((ref.seed for ref in chosen if ref.seed is not None), None)
        result.blobs = blobs or None
        result.seconds = time.perf_counter() - started
        return result


def session_name(name: str) -> str:
    """A per-image session folder name: readable, plain ASCII, and one per input name (the digest tells apart
    names the readable part would merge, such as `x/y` and `x__y`)."""
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:10]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__")).lstrip(".")[:80]
    return f"{readable}-{digest}"


def _handles(text: str) -> list[str]:
    return [f"img{int(n)}" for n in re.findall(r"\bimg(\d+)\b", text, re.IGNORECASE)]
