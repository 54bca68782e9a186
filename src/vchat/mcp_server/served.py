"""The sessions a server runs: normal vchat Sessions, one per MCP client, over one shared model runtime."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from PIL import Image

from vchat.config import Settings
from vchat.session import Session
from vchat.store.images import ImageRef

if TYPE_CHECKING:
    from vchat.runtime.manager import ModelManager

# Session start (the sessions-index append) and discard (its rewrite) of the server's sessions, which run in
# different worker threads, one at a time: the rewrite must not drop another session's fresh entry.
_INDEX_LOCK = threading.Lock()


class SharedRuntime:
    """One ModelManager for every session of the server: one memory budget, weights loaded once.

    Loading progress goes to the session whose call is loading (the one bound in the calling thread).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._manager: Any = None
        self._made = threading.Lock()
        self._local = threading.local()

    @property
    def manager(self) -> Any:
        """The ModelManager, created on first use (loading nothing yet)."""
        with self._made:
            if self._manager is None:
                from vchat.runtime import ModelManager

                self._manager = ModelManager.from_settings(self.settings, progress=self._loading)
            return self._manager

    @contextmanager
    def bound(self, report: Callable[[int, int, str], None]) -> Iterator[None]:
        """Send the loading progress of calls made in this thread to `report` while the block runs."""
        self._local.report = report
        try:
            yield
        finally:
            self._local.report = None

    def _loading(self, done: int, total: int, label: str) -> None:
        report = getattr(self._local, "report", None)
        if report is not None:
            report(done, total, label)


class ServedSession(Session):
    """Outputs are written exactly as in a chat; the images also stay in memory until the call's result is built.

    A preview made from memory skips decoding the PNG that was just written. The models come from the server's
    SharedRuntime, so every client's session draws on the same weights and the same budget.
    """

    def __init__(self, settings: Settings, tools: Any, runtime: SharedRuntime | None = None, **kwargs: Any) -> None:
        super().__init__(settings, tools, None, **kwargs)
        self.fresh: dict[str, Image.Image] = {}
        self.runtime = runtime
        self.closed = False

    @property
    def models(self) -> ModelManager:
        """The shared runtime's ModelManager (a session of its own only without one, as in a chat)."""
        if self.runtime is None:
            return super().models
        return self.runtime.manager

    def progress_of_loading(self, done: int, total: int, label: str) -> None:
        """Where the shared runtime sends this session's loading progress (not a cancel point: see Session)."""
        self._loading_progress(done, total, label)

    def _start(self) -> None:
        with _INDEX_LOCK:
            super()._start()

    def discard(self) -> bool:
        """Session.discard, serialised with the other sessions' starts (they share the index file)."""
        with _INDEX_LOCK:
            removed = super().discard()
        self.closed = self.closed or removed
        return removed

    def close(self) -> None:
        """Session.close; `reopen` takes the folder again if the client comes back."""
        super().close()
        self.closed = True

    def reopen(self) -> None:
        """Take the session folder's lock again after `close` (the transcript reopens by itself on write)."""
        if self.closed and self._started:
            self._lock.acquire()
        self.closed = False

    def save_image(
        self,
        image: Image.Image,
        *,
        tool: str,
        params: Mapping[str, Any],
        parents: tuple[str, ...],
        seed: int | None = None,
    ) -> ImageRef:
        """Write the output (Session.save_image) and keep the image for the preview."""
        ref = super().save_image(image, tool=tool, params=params, parents=parents, seed=seed)
        if image.mode in ("RGB", "RGBA", "L"):  # other modes are normalised on write: preview the file then
            self.fresh[ref.handle] = image
        return ref
