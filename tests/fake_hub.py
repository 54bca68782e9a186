"""A stand-in for the Hugging Face hub over real HTTP on 127.0.0.1: serves zoo folders as repos, so a first-use
download runs through huggingface_hub's real code (HEAD for metadata, GET with its progress bar) offline.

Only what loading by id needs: `/{repo}/resolve/{revision}/{path}` with the hub's metadata headers, the repo's
info (`/api/models/{repo}[/revision/{revision}]`: commit and file list), and the hub's "entry not found" answer
for anything else (the libraries probe for optional files and folders).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


class FakeHub:
    def __init__(self, repos: dict[str, Path]):
        self.repos = repos
        self.downloads: list[str] = []  # "repo/path" of every file sent with GET
        self.missing: list[str] = []  # URL paths answered "not found"
        self.url = ""

    def find(self, path: str) -> tuple[str, Path | None]:
        """(repo id, file) for a resolve URL path, file None when the repo or the file is not there."""
        for repo, folder in self.repos.items():
            prefix = f"/{repo}/resolve/"
            if path.startswith(prefix):
                _revision, _, name = path[len(prefix) :].partition("/")
                file = folder / name
                return repo, file if name and file.is_file() else None
        return "", None


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet test output
            pass

        def _tree(self, path: str) -> bool:
            # The file listing `HfApi.list_repo_files` reads (one page, recursive), as `vchat models pull` uses it.
            for repo, folder in hub.repos.items():
                if path.startswith(f"/api/models/{repo}/tree/"):  # at main or at the commit (`snapshot_download`)
                    files = sorted(f for f in folder.rglob("*") if f.is_file())
                    entries = [
                        {
                            "type": "file",
                            "path": f.relative_to(folder).as_posix(),
                            "size": f.stat().st_size,
                            "oid": hashlib.sha1(f.read_bytes()).hexdigest(),
                        }
                        for f in files
                    ]
                    data = json.dumps(entries).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return True
            return False

        def _info(self, path: str) -> bool:
            for repo, folder in hub.repos.items():
                if path in (f"/api/models/{repo}", f"/api/models/{repo}/revision/main"):
                    files = sorted(f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file())
                    sha = hashlib.sha1(repo.encode()).hexdigest()
                    info = {"id": repo, "modelId": repo, "sha": sha, "private": False, "tags": []}
                    data = json.dumps({**info, "siblings": [{"rfilename": f} for f in files]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return True
            return False

        def _answer(self, body: bool) -> None:
            path = unquote(urlparse(self.path).path)
            if body and (self._info(path) or self._tree(path)):
                return
            repo, file = hub.find(path)
            if file is None:
                hub.missing.append(f"{self.command} {self.path}")
                # A path inside a known repo (a file or folder it lacks) is "entry", anything else "repo" not found.
                known = any(f"/{name}/" in path for name in hub.repos)
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound" if known else "RepoNotFound")
                self.send_header("X-Error-Message", "not in the fake hub")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = file.read_bytes()
            self.send_response(200)
            self.send_header("X-Repo-Commit", hashlib.sha1(repo.encode()).hexdigest())
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if body:
                hub.downloads.append(f"{repo}/{file.relative_to(hub.repos[repo]).as_posix()}")
                self.wfile.write(data)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

    return Handler


@contextmanager
def serve(repos: dict[str, Path]) -> Iterator[FakeHub]:
    """Run a fake hub for `repos` (hub id -> folder) in a thread; its address is `hub.url`."""
    hub = FakeHub(repos)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
