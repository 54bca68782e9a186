"""Where weights come from: local folders or the Hugging Face cache, offline detection, and pulling with progress."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vchat.errors import ModelLoadError
from vchat.runtime.catalog import DEFAULT_MODELS, ComponentSpec, expand_keys

_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class Source:
    """Where one component loads from: a hub id or a local folder, and the subfolder inside it."""

    model: str  # the model key (or the component key when the user overrode one component)
    ref: str  # hub id or folder path
    local: bool
    subfolder: str | None

    @property
    def label(self) -> str:
        """`sd15 (stable-diffusion-v1-5/stable-diffusion-v1-5)` for messages."""
        return f"{self.model} ({self.ref})"


def is_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: nothing may be downloaded."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time (tests and users may change it)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def _looks_local(ref: str) -> bool:
    # Hub ids are ORG/NAME; anything absolute, relative-marked or existing on disk is a folder.
    return Path(ref).expanduser().is_dir() or ref.startswith(("/", "./", "../", "~", ".\\")) or ref.count("/") > 1


def model_ref(model_key: str, overrides: Mapping[str, str]) -> str:
    """The id or folder configured for a model key (the default when the `[models]` table does not set it)."""
    return overrides.get(model_key) or DEFAULT_MODELS[model_key]


def source_for(spec: ComponentSpec, overrides: Mapping[str, str]) -> Source:
    """Where a component loads from; a `[models]` entry for the component key itself points at its root folder."""
    if spec.key in overrides and spec.key != spec.model:
        ref = overrides[spec.key]
        return Source(spec.key, ref, _looks_local(ref), None)
    ref = model_ref(spec.model, overrides)
    return Source(spec.model, ref, _looks_local(ref), spec.subfolder)


def snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of a hub repo (the one refs/main points to), or None."""
    repo = cache_dir() / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file():
        folder = repo / "snapshots" / ref.read_text().strip()
        if folder.is_dir():
            return folder
    snapshots = sorted((repo / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime) if repo.is_dir() else []
    return snapshots[-1] if snapshots else None


def root_of(source: Source) -> Path | None:
    """The folder holding the files of a source, if they are on this machine."""
    if source.local:
        path = Path(source.ref).expanduser()
        return path if path.is_dir() else None
    return snapshot(source.ref)


def _groups(spec: ComponentSpec, source: Source) -> list[tuple[bool, tuple[str, ...]]]:
    """(required, patterns) per file group, rebased when a component override drops the subfolder."""
    out = []
    for group in spec.files:
        required = not group[0].startswith("?")
        patterns = tuple(p.lstrip("?") for p in group)
        if spec.subfolder and source.subfolder is None:
            patterns = tuple(p.removeprefix(spec.subfolder + "/") for p in patterns)
        out.append((required, patterns))
    return out


def has_required_files(spec: ComponentSpec) -> bool:
    """Whether a component needs any file at all (some, like a checkpoint's safety checker, are all optional)."""
    return any(not group[0].startswith("?") for group in spec.files)


def find_files(spec: ComponentSpec, source: Source) -> tuple[list[Path], list[str]]:
    """(files present, required patterns missing) for a component; all missing when the root is absent."""
    root = root_of(source)
    found: list[Path] = []
    missing: list[str] = []
    for required, patterns in _groups(spec, source):
        hits: list[Path] = []
        for pattern in patterns:
            hits = sorted(p for p in root.glob(pattern) if p.is_file()) if root else []
            if hits:
                break
        if hits:
            found.extend(hits)
        elif required:
            missing.append(patterns[0])
    return found, missing


def weight_files(spec: ComponentSpec, source: Source) -> list[Path]:
    """The weight files of a component that are on disk (for size estimates before loading)."""
    files, _ = find_files(spec, source)
    return [p for p in files if p.suffix in (".safetensors", ".bin", ".pth", ".pt", ".ckpt")]


def disk_size(paths: Iterable[Path]) -> int:
    """Bytes on disk, following the cache's symlinks to blobs."""
    return sum(p.resolve().stat().st_size for p in paths if p.exists())


def missing_error(spec: ComponentSpec, source: Source, missing: list[str], reason: str | None = None) -> ModelLoadError:
    """The one-line error for weights that are not on this machine, saying how to fetch them."""
    if source.local:
        what = f"folder {source.ref} has no {missing[0]}" if missing else f"folder {source.ref} cannot be read"
        return ModelLoadError(f"model {spec.key}: {what}; fix [models] {source.model} in the config file")
    why = reason or ("HF_HUB_OFFLINE is set" if is_offline() else "it could not be downloaded")
    why = why.rstrip(". ")
    if why[:1].isupper() and why[1:2].islower():  # a library's sentence ("We couldn't…"), not a NAME
        why = why[:1].lower() + why[1:]
    return ModelLoadError(
        f"model {spec.key} ({source.ref}) is not downloaded ({why}); "
        f"run `vchat models pull {source.model}` with network access, or set [models] {source.model} to a folder"
    )


_REACHABLE: dict[str, tuple[float, bool]] = {}


def endpoint() -> str:
    """The hub's address (HF_ENDPOINT honoured, as huggingface_hub does)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def reachable(timeout: float = 3.0) -> bool:
    """Whether the hub answers a TCP connection, remembered for a minute.

    Without a network, huggingface_hub retries a failing download for about 25 s while printing
    warnings; one quick connection attempt first turns that into an immediate, clear error.
    """
    import socket
    import time
    from urllib.parse import urlparse

    url = endpoint()
    cached = _REACHABLE.get(url)
    if cached is not None and time.monotonic() - cached[0] < 60:
        return cached[1]
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    _REACHABLE[url] = (time.monotonic(), ok)
    return ok


def select_repo_files(
    repo_files: list[str], specs: Iterable[ComponentSpec], sources: Mapping[str, Source]
) -> list[str]:
    """The files of a repo that the given components need: per group, the first pattern that matches anything."""
    chosen: list[str] = []
    for spec in specs:
        for _required, patterns in _groups(spec, sources[spec.key]):
            for pattern in patterns:
                hits = [f for f in repo_files if fnmatch.fnmatch(f, pattern)]
                if hits:
                    chosen.extend(h for h in hits if h not in chosen)
                    break
    return chosen


PullProgress = Callable[[str], None]


def ensure_pullable() -> None:
    """Raise the one-line reason why nothing can be downloaded now (offline mode, or no route to the hub)."""
    if is_offline():
        raise ModelLoadError("cannot pull models: HF_HUB_OFFLINE is set; unset it to download")
    if not reachable():
        # Checked first: without a network huggingface_hub retries for ~25 s and then raises a long chain.
        raise ModelLoadError(
            f"cannot pull models: {endpoint()} cannot be reached (no network?); connect and run the command again"
        )


def pull(keys: list[str], overrides: Mapping[str, str], log: PullProgress | None = None) -> list[tuple[str, Path]]:
    """Download what the given model or component keys need into the HF cache; huggingface_hub draws the progress bars.

    Returns (hub id, snapshot folder) per repo fetched; local folders are skipped.
    """
    ensure_pullable()
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    specs = expand_keys(keys)
    sources = {spec.key: source_for(spec, overrides) for spec in specs}
    by_repo: dict[str, list[ComponentSpec]] = {}
    for spec in specs:
        if not sources[spec.key].local:
            by_repo.setdefault(sources[spec.key].ref, []).append(spec)
    api = HfApi()
    done: list[tuple[str, Path]] = []
    for repo_id, repo_specs in by_repo.items():
        try:
            files = select_repo_files(api.list_repo_files(repo_id), repo_specs, sources)
            if log:
                log(f"{repo_id}: {len(files)} file(s)")
            path = snapshot_download(repo_id, allow_patterns=files, cache_dir=str(cache_dir()))
        except Exception as exc:  # HTTP, connection and disk faults of any library layer: one line, no chain
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            if not isinstance(exc, (HfHubHTTPError, OSError)):
                first = f"{type(exc).__name__}: {first}"
            raise ModelLoadError(f"could not download {repo_id}: {first}") from None
        done.append((repo_id, Path(path)))
    return done
