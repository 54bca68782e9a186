"""Progress of a call: a tool's (done, total, label) reports, from the worker thread, as MCP notifications."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread

if TYPE_CHECKING:
    from vchat.session import Session

# The longest a tool waits for one notification to be taken by a client that is slow to read.
NOTIFY_WAIT = 10.0


class Progress:
    """Forwards a tool's (done, total, label) reports from the worker thread as MCP progress notifications.

    Loading, then denoising, each count from 1: the values sent are offset by the phases
    before, so the client sees one rising number as the protocol requires.

    A notification is awaited on the event loop while the tool's thread waits: once the request is
    cancelled (`stop`) none is sent and any in flight is abandoned, since the stream it would go to may
    never be read again (at 2026-07-28 over HTTP, a cancel closes it) and the tool must reach its next
    cancel check. A client that stops reading costs a notification, never the tool.
    """

    def __init__(self, notify: Callable[[float, float | None, str], Any], cancelled: threading.Event, session: Session):
        self.notify = notify
        self.cancelled = cancelled
        self.session = session
        self.phase = ""
        self.done = 0
        self.total = 0
        self.offset = 0
        self.sent = -1
        self.stopped = False
        self._sending: set[anyio.CancelScope] = set()

    def __call__(self, done: int, total: int, label: str) -> None:
        """Called by the session in the worker thread."""
        if self.cancelled.is_set():
            # A cancel that came before Session.run_tool cleared the flag: set it again.
            self.session.cancel_event.set()
        phase = label.split(" ", 1)[0]
        if phase != self.phase or done < self.done:
            self.offset += self.total
            self.phase = phase
        self.done, self.total = done, max(total, done)
        value = self.offset + done
        if value <= self.sent:
            return
        self.sent = value
        message = f"{label} ({done}/{total})"
        with contextlib.suppress(Exception):  # a client gone mid-call must not break the tool
            anyio.from_thread.run(self._send, float(value), float(self.offset + self.total), message)

    async def _send(self, value: float, total: float | None, message: str) -> None:
        if self.stopped:
            return
        with anyio.CancelScope() as scope, anyio.move_on_after(NOTIFY_WAIT):
            self._sending.add(scope)
            try:
                await self.notify(value, total, message)
            finally:
                self._sending.discard(scope)

    def stop(self) -> None:
        """The request was cancelled: send nothing more (called on the event loop)."""
        self.stopped = True
        for scope in list(self._sending):
            scope.cancel()

    async def waiting(self, message: str) -> None:
        """A note sent from the event loop before the tool starts; the tool's own values come after it."""
        self.sent = 1
        self.offset = 2  # the tool's first report (0 of n) must still rise above the note
        with contextlib.suppress(Exception):
            await self._send(1.0, None, message)
