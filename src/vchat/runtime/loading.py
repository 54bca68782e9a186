"""Loading one component from disk into CPU memory through the libraries' own from_pretrained code."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

from vchat.errors import ModelLoadError
from vchat.runtime import hub
from vchat.runtime.catalog import SCHEDULER, WEIGHTS, ComponentSpec
from vchat.runtime.devices import torch_dtype
from vchat.runtime.model_files import check_folder


def _import(loader: str) -> Any:
    module_name, _, attr = loader.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def _location(spec: ComponentSpec, source: hub.Source) -> tuple[str, dict[str, Any]]:
    """The path or id to pass to from_pretrained and the keyword arguments every loader shares."""
    kwargs: dict[str, Any] = {}
    if source.subfolder:
        kwargs["subfolder"] = source.subfolder
    if source.local:
        root = hub.root_of(source)
        return str(root or source.ref), kwargs
    kwargs["cache_dir"] = str(hub.cache_dir())
    if hub.is_offline():
        # Passed explicitly: the libraries read HF_HUB_OFFLINE once at import, the user may set it later.
        kwargs["local_files_only"] = True
    elif not hub.find_files(spec, source)[1] and not hub.reachable():
        # Everything is cached but there is no network: without this the libraries spend ~25 s retrying
        # their update check (printing warnings) before they fall back to the cache.
        kwargs["local_files_only"] = True
    return source.ref, kwargs


def check_available(spec: ComponentSpec, source: hub.Source) -> None:
    """Fail fast, with the one-line message, when a component's files cannot be on this machine by load time."""
    if source.local or hub.is_offline():
        _found, missing = hub.find_files(spec, source)
        if missing:
            raise hub.missing_error(spec, source, missing)
        if source.local:
            check_folder(Path(source.ref).expanduser() / (source.subfolder or ""), spec.key, source.model)
        return
    _found, missing = hub.find_files(spec, source)
    if missing and not hub.reachable():
        raise hub.missing_error(spec, source, missing, reason=f"{hub.endpoint()} cannot be reached")


def load_component(spec: ComponentSpec, source: hub.Source, dtype: str | None) -> Any:
    """Load a component into CPU memory (in `dtype` when it has weights); errors become one-line ModelLoadErrors."""
    check_available(spec, source)
    with warnings.catch_warnings():
        # diffusers 0.42 still passes an argument huggingface_hub 1.x+ deprecates; the warning is not the user's.
        warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
        # controlnet_aux's import warns about optional extras and deprecations that are not the user's.
        quiet = r"mediapipe|Overwriting tiny_vit|Importing from timm|`torch\.jit\.script`"
        warnings.filterwarnings("ignore", message=f".*({quiet}).*")
        return _load(spec, source, dtype)


def _load(spec: ComponentSpec, source: hub.Source, dtype: str | None) -> Any:
    where, kwargs = _location(spec, source)
    try:
        if spec.kind == SCHEDULER:
            import diffusers

            config = diffusers.DDPMScheduler.load_config(where, **kwargs)
            return getattr(diffusers, config["_class_name"]).from_config(config)
        cls = _import(spec.loader)
        if spec.loader.startswith("transformers"):
            _quiet_transformers()
        if spec.loader.startswith("controlnet_aux"):
            # controlnet_aux reads fixed file names from a folder or downloads them from the repo root.
            kwargs.pop("subfolder", None)
            if source.local:
                kwargs = {}
            return cls.from_pretrained(where, **kwargs).to("cpu")
        if spec.kind == WEIGHTS:
            # disable_mmap: read the files sequentially into RAM now; page faults on a mmap during .to(cuda) are slow.
            kwargs.update(dtype=torch_dtype(dtype or "float32"), disable_mmap=True)
            model = cls.from_pretrained(where, **kwargs)
            model.eval()
            return model
        return cls.from_pretrained(where, **kwargs)
    except ModelLoadError:
        raise
    except Exception as exc:  # the libraries raise OSError, ValueError, hub errors…: report them as one line
        _found, missing = hub.find_files(spec, source)
        if missing and not source.local:
            raise hub.missing_error(spec, source, missing, reason=_first_line(exc)) from exc
        raise ModelLoadError(f"could not load {spec.key} from {source.ref}: {_first_line(exc)}") from exc


def _quiet_transformers() -> None:
    # transformers 5 draws a per-tensor "Loading weights" bar; the manager reports loading through its own callback.
    # Its warnings (prompt longer than 77 tokens, processor backend fallbacks) would land in the middle of the
    # chat as raw log lines; vchat reports what matters in the tool's observation instead.
    # transformers' switch also turns off huggingface_hub's bars, and with them the progress of a first-use
    # download (the built-in planner's ~2 GB): those come back on unless the user had them off.
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging

    hub_bars_off = are_progress_bars_disabled()
    logging.disable_progress_bar()
    if not hub_bars_off:
        enable_progress_bars()
    logging.set_verbosity_error()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
