"""One vchat session per MCP client: its own folder, handles and resource URIs; the model runtime is shared.

Which client a call comes from depends on the transport:
- stdio: there is one client, so one session for the server's life.
- streamable HTTP with a protocol session (2025-11-25 clients, Mcp-Session-Id): one session per MCP session,
  closed when the client ends it or it times out.
- streamable HTTP at 2026-07-28, which has no protocol session: the state moves into the arguments, as that
  revision intends. An image is named by its resource URI, whose authority holds a secret only the caller was
  given; a call that names one runs in that URI's session, a call that names none starts a new one.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import anyio

from vchat.errors import VchatError
from vchat.mcp_server.inputs import URI_SCHEME, ImageInputs, Roots
from vchat.mcp_server.served import ServedSession, SharedRuntime
from vchat.session import new_session_id
from vchat.store.images import ImageRef

if TYPE_CHECKING:
    from vchat.config import Settings
    from vchat.tools.base import Tool

# Stateless clients start a session per chain of calls; past this many, the least recently used are closed
# (their files released; they open again if a later call names one of their images).
MAX_OPEN = 32
# Each stateless chain keeps a session folder (its images stay readable by URI). Without a bound, any client
# that can reach the server could fill the disk with folders, one per call; past this many a new chain is refused
# (calls that name an earlier image's URI go on in its session).
MAX_STATELESS = 1000


@dataclass(eq=False)
class Workspace:
    """One client's vchat session, the inputs bound into it, and what it has published."""

    session: ServedSession
    inputs: ImageInputs
    name: str  # the authority of its resource URIs: the session id and a secret
    stateless: bool
    lock: anyio.Lock = field(default_factory=anyio.Lock)  # one call at a time: the session is not thread-safe
    published: dict[str, ImageRef] = field(default_factory=dict)
    used: float = field(default_factory=time.monotonic)
    calls: int = 0

    def publish(self) -> None:
        """Every image of the session becomes readable as a resource."""
        for ref in self.session.store:
            self.published[ref.handle] = ref


class Workspaces:
    """Makes, finds and closes the workspaces of one server."""

    def __init__(self, settings: Settings, tools: Sequence[Tool], allow: list[Path]) -> None:
        self.settings = settings
        self.tools = list(tools)
        self.allow = list(allow)
        self.runtime = SharedRuntime(settings)
        self._by_name: OrderedDict[str, Workspace] = OrderedDict()
        # Every session folder this server made, also of clients gone: none is readable by another client's path.
        self.folders: set[Path] = set()

    def __iter__(self) -> Iterator[Workspace]:
        return iter(list(self._by_name.values()))

    def new(self, *, stateless: bool) -> Workspace:
        """A workspace with a fresh session (its folder is made by the first image it gets)."""
        if stateless and sum(1 for w in self._by_name.values() if w.stateless) >= MAX_STATELESS:
            raise VchatError(
                f"this server already keeps {MAX_STATELESS} sessions of stateless calls; continue one by naming an "
                "image URI it returned, or restart the server"
            )
        session_id = new_session_id()
        while (self.settings.out_dir / session_id).exists() or any(w.session.id == session_id for w in self):
            session_id = new_session_id()
        session = ServedSession(self.settings, self.tools, self.runtime, session_id=session_id)
        name = f"{session_id}.{secrets.token_hex(12)}"
        inputs = ImageInputs(session, Roots(list(self.allow)), name, others=lambda: self.folders)
        workspace = Workspace(session, inputs, name, stateless)
        self.folders.add(session.folder)
        self._by_name[name] = workspace
        return workspace

    def find(self, name: str) -> Workspace | None:
        """The workspace with this URI authority, if the server still has it."""
        return self._by_name.get(name)

    def of_uri(self, uri: str) -> Workspace | None:
        """The workspace a vchat:// URI names, if any."""
        parsed = urlparse(uri.strip())
        return self.find(parsed.netloc) if parsed.scheme == URI_SCHEME else None

    def touch(self, workspace: Workspace) -> None:
        """Mark a workspace used (it opens again if it was closed) and close the stateless ones least used."""
        workspace.used = time.monotonic()
        workspace.session.reopen()
        self._by_name.move_to_end(workspace.name)
        open_stateless = [w for w in self if w.stateless and not w.session.closed and w is not workspace]
        for old in open_stateless[: max(0, len(open_stateless) + 1 - MAX_OPEN)]:
            if not old.lock.locked():
                self.close(old)

    def close(self, workspace: Workspace, *, forget: bool = False) -> None:
        """Release a workspace's files; a session nothing came of is removed (and always forgotten)."""
        session = workspace.session
        if session.closed:
            return
        if session.discard():
            forget = True
        else:
            session.close()
        if forget:
            self._by_name.pop(workspace.name, None)

    def close_all(self) -> None:
        """At the server's end."""
        for workspace in self:
            self.close(workspace)
