"""Image inputs of MCP calls: handles, resource URIs, data: URIs and paths confined to the allowed folders."""

from __future__ import annotations

import base64
import binascii
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from vchat.errors import ImageError, ToolInputError, UnknownImageError, UnsafePathError
from vchat.mcp_server.isolation import foreign_session
from vchat.store.refs import HANDLE_RE, ImageRef

if TYPE_CHECKING:
    from vchat.session import Session
    from vchat.tools.base import Tool

URI_SCHEME = "vchat"
# A data: URI is decoded in memory: cap what one argument may carry (base64 of 48 MiB of image).
MAX_DATA_URI_CHARS = 64 * 1024 * 1024
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*),(?P<data>.*)$", re.DOTALL)


def image_uri(name: str, handle: str) -> str:
    """The resource URI of a session image, e.g. vchat://20261129-101500-3fa2.<secret>/img3."""
    return f"{URI_SCHEME}://{name}/{handle}"


def handle_of_uri(uri: str, name: str) -> str | None:
    """The handle named by a vchat:// URI of this session (`name`: its authority); None for no such URI."""
    parsed = urlparse(uri)
    if parsed.scheme != URI_SCHEME:
        return None
    if parsed.netloc != name:
        raise UnknownImageError(f"{uri} is not an image of this client's vchat session")
    return parsed.path.strip("/") or None


def is_path_like(value: str) -> bool:
    """True when an image argument names a file rather than a handle, a resource URI or a data: URI."""
    text = value.strip()
    return not (HANDLE_RE.match(text) or text.startswith(("data:", f"{URI_SCHEME}://")))


def path_of(value: str, base: Path) -> Path:
    """The absolute path an argument names (file:// URIs, `~`, and paths relative to `base`), not resolved."""
    text = value.strip()
    if text.startswith("file://"):
        text = unquote(urlparse(text).path)
    path = Path(os.path.expanduser(text))
    return Path(os.path.abspath(path if path.is_absolute() else base / path))


def _relative_parts(path: Path, root: Path) -> tuple[str, ...] | None:
    try:
        return path.relative_to(root).parts
    except ValueError:
        return None


@dataclass
class Roots:
    """The folders the server may read images from: --allow folders, then the client's roots."""

    allowed: list[Path]
    client: list[Path] = field(default_factory=list)

    @property
    def all(self) -> list[Path]:
        """Every root, resolved, each once."""
        return list(dict.fromkeys(p.resolve() for p in (*self.allowed, *self.client)))

    def base(self) -> Path:
        """Where relative paths start: the first allowed folder (the current one by default)."""
        return (self.allowed or self.client or [Path.cwd()])[0]

    def describe(self) -> str:
        """The roots as one line for error messages."""
        return ", ".join(str(p) for p in self.all) or "none"

    def covers(self, value: str) -> bool:
        """True when the path an argument names lies under a root (links followed)."""
        try:
            return self._root_of(path_of(value, self.base()).resolve()) is not None
        except (OSError, RuntimeError):
            return False

    def _root_of(self, path: Path) -> Path | None:
        return next((root for root in self.all if _relative_parts(path, root) is not None), None)

    def confine(self, value: str) -> Path:
        """The real path of an image file under a root; UnsafePathError for anything else.

        The argument comes from another agent's model, so the rules are those vchat applies to
        its own model: the real path (links followed) must lie under a root, and no folder or
        file below the root may be hidden (`.ssh`, `.config`, `.env`…).
        """
        lexical = path_of(value, self.base())
        try:
            real = lexical.resolve()
        except (OSError, RuntimeError):  # a link loop
            raise UnsafePathError(f"{value!r}: cannot be resolved (a link loop?)") from None
        root = self._root_of(real)
        if root is None:
            if self._root_of(lexical) is not None:
                raise UnsafePathError(f"{value!r} is a link to {real}, outside the allowed folders ({self.describe()})")
            raise UnsafePathError(
                f"{value!r} is outside the allowed folders ({self.describe()}); "
                "start vchat mcp with --allow DIR to allow another folder"
            )
        hidden = [part for part in _relative_parts(real, root) or () if part.startswith(".")]
        lexical_root = self._root_of(lexical)
        if lexical_root is not None:
            hidden += [part for part in _relative_parts(lexical, lexical_root) or () if part.startswith(".")]
        if hidden:
            raise UnsafePathError(f"{value!r}: hidden files and folders ({hidden[0]}) are never read")
        if not real.is_file():
            raise ImageError(f"{value!r}: no such file" if not real.exists() else f"{value!r}: not a file")
        return real


def decode_data_uri(value: str) -> bytes:
    """The bytes of a base64 `data:image/...` URI; ToolInputError for anything else."""
    if len(value) > MAX_DATA_URI_CHARS:
        raise ToolInputError(f"data: URI of {len(value):,} characters is over the limit of {MAX_DATA_URI_CHARS:,}")
    match = _DATA_URI.match(value.strip())
    if match is None:
        raise ToolInputError("malformed data: URI; expected data:image/png;base64,...")
    mime = (match.group("mime") or "").lower()
    if mime and not mime.startswith("image/"):
        raise ToolInputError(f"data: URI of type {mime}; an image is expected")
    if ";base64" not in match.group("params").lower():
        raise ToolInputError("data: URI must be base64-encoded (data:image/png;base64,...)")
    try:
        return base64.b64decode("".join(match.group("data").split()), validate=True)
    except (binascii.Error, ValueError):
        raise ToolInputError("data: URI holds invalid base64") from None


class ImageInputs:
    """Turns a call's image arguments into session handles, attaching new files and data as it goes.

    Runs in the worker thread under the workspace's call lock (it writes into the session).
    `name` is the authority of the session's resource URIs. A stateless client (HTTP at 2026-07-28) has no
    session to keep bare handles in: it names images by URI, and may name another of its chains' images
    (`foreign` finds them; each is attached as a new input). Paths into the session folders of the
    server's other clients (`others`) are refused.
    """

    def __init__(
        self,
        session: Session,
        roots: Roots,
        name: str | None = None,
        *,
        stateless: bool = False,
        foreign: Callable[[str], ImageRef | None] | None = None,
        others: Callable[[], set[Path]] | None = None,
    ) -> None:
        self.session = session
        self.roots = roots
        self.name = name or session.id
        self.stateless = stateless
        self.foreign = foreign
        self.others = others  # the session folders of every client of the server
        # (real path, mtime, size) -> handle: the same unchanged file passed twice is attached once.
        self._attached: dict[tuple[str, int, int], str] = {}

    def bind(self, tool: type[Tool], arguments: Mapping[str, Any], client_roots: Iterable[Path] = ()) -> dict[str, Any]:
        """The arguments with every image field replaced by a handle of this session."""
        self.roots.client = list(client_roots)
        named = dict(arguments)
        for spec in tool.inputs:
            value = named.get(spec.name)
            if spec.kind == "image" and isinstance(value, str):
                named[spec.name] = self.handle_for(value)
            elif spec.kind == "images" and isinstance(value, list):  # each one confined like a single image
                named[spec.name] = [self.handle_for(item) if isinstance(item, str) else item for item in value]
        return named

    def handle_for(self, value: str) -> str:
        """The session handle for one image argument."""
        text = value.strip()
        store = self.session.store
        if HANDLE_RE.match(text):
            if self.stateless:
                raise UnknownImageError(
                    f"{text!r}: over stateless HTTP (MCP 2026-07-28) there is no session to keep bare handles in; "
                    f"name the image by the vchat:// URI an earlier result gave as its handle"
                )
            if text not in store:
                known = ", ".join(ref.handle for ref in store) or "none yet"
                raise UnknownImageError(f"unknown image handle {text!r}; this client's session knows: {known}")
            return store.get(text).handle
        if self.foreign is not None and text.startswith(f"{URI_SCHEME}://") and urlparse(text).netloc != self.name:
            other = self.foreign(text)
            if other is None:
                raise UnknownImageError(f"{text} names no image of this server (it may have been restarted)")
            cached = self._attached.get((text, 0, 0))
            if cached is not None and cached in store:
                return cached
            handle = self._attached[(text, 0, 0)] = self.session.attach(other.path, source=text).handle
            return handle
        from_uri = handle_of_uri(text, self.name)
        if from_uri is not None:
            if not HANDLE_RE.match(from_uri) or from_uri not in store:
                return self._bad_uri(text)
            return store.get(from_uri).handle
        if text.startswith("data:"):
            return self._attach_data(decode_data_uri(text))
        if not text:
            raise ToolInputError("empty image argument; give a handle, a path or a data: URI")
        # An output of this session named by its path is the same image, not a new attachment.
        candidate = path_of(text, self.roots.base())
        for ref in store:
            if ref.tool is not None and candidate == ref.path:
                return ref.handle
        real = self.roots.confine(text)
        if foreign_session(real, self.session.folder, self.others):
            # The allowed folder may hold the output folder (both are the current folder by default): another
            # client's images stay out of reach by path too, as they are by handle, also after a restart.
            raise UnsafePathError(
                f"{value!r} belongs to another session of this server; "
                "name an image by the handle or URI its result gave"
            )
        stat = real.stat()
        key = (str(real), stat.st_mtime_ns, stat.st_size)
        if key in self._attached and self._attached[key] in store:
            return self._attached[key]
        ref = self.session.attach(real)
        self._attached[key] = ref.handle
        return ref.handle

    def _bad_uri(self, uri: str) -> str:
        raise UnknownImageError(f"{uri} names no image of this session")

    def _attach_data(self, data: bytes) -> str:
        folder = self.session.folder
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".data-uri-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            ref = self.session.attach(Path(tmp), source=f"data: URI ({len(data):,} bytes)")
        except ImageError as exc:  # name the argument, not the carrier file
            raise ImageError(f"data: URI{str(exc).removeprefix(tmp)}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        return ref.handle
