"""Pick the language model backend: explicit settings > OPENAI_API_KEY > a local server > the built-in planner."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from vchat.config import Settings, is_local_url
from vchat.errors import LLMError, NoModelError
from vchat.llm.base import LLM

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
# Usual ports of local OpenAI-compatible servers, in order of preference when several answer.
LOCAL_SERVERS: Mapping[int, str] = {11434: "Ollama", 1234: "LM Studio", 8080: "llama.cpp", 8000: "vLLM"}
PROBE_TIMEOUT = 0.3
# Listing the models of a server the user named explicitly may take longer than a blind probe.
LIST_TIMEOUT = 3.0


@dataclass(frozen=True)
class LocalServer:
    """An OpenAI-compatible server found on this machine."""

    kind: str
    base_url: str
    models: tuple[str, ...]


def connect_hint() -> str:
    """One line telling the user how to connect a language model (callers prefix their own context)."""
    return (
        "set OPENAI_API_KEY, or start a local server (Ollama, LM Studio, llama.cpp, vLLM) "
        "or pass --base-url http://localhost:11434/v1 --model llama3.1"
    )


def select_llm(
    settings: Settings,
    *,
    ports: Sequence[int] | None = None,
    host: str = "127.0.0.1",
    probe_timeout: float = PROBE_TIMEOUT,
) -> LLM | None:
    """The backend the settings ask for, else OPENAI_API_KEY, else a local server found, else the built-in planner.

    None only for `llm = "none"`.

    `ports` (default: the usual ports of Ollama, LM Studio, llama.cpp and vLLM) and `host` are for tests.
    """
    choice = settings.llm
    if choice == "none":
        return None
    if choice.startswith("scripted:"):
        from vchat.llm.scripted import ScriptedLLM

        return ScriptedLLM.from_file(choice[len("scripted:") :])
    if choice == "local" or choice.startswith("local:"):
        return builtin_planner(settings, choice.partition(":")[2] or None)
    if choice == "openai" or settings.base_url or settings.api_key:
        return _openai_chat(settings)
    server = _find_local_server(ports, host, probe_timeout, settings.model)
    if server is None:
        return builtin_planner(settings, None, picked=True)
    model = settings.model or (server.models[0] if server.models else None)
    if model is None:
        raise NoModelError(f"found {server.kind} at {server.base_url} but it lists no models; load or pull one first")
    # A server found by probing gets no key: the user's key (if any) is not meant for it.
    return _build(settings, model, server.base_url, api_key=None)


def builtin_planner(settings: Settings, ref: str | None, *, picked: bool = False) -> LLM:
    """The in-process planner (`ref`: a hub id or folder instead of the default); `picked`: chosen automatically."""
    from vchat.llm.local import LocalLLM

    if ref:
        # The planner is a runtime component like any other: `--llm local:X` is `[models] planner = X`.
        settings.models["planner"] = ref
    return LocalLLM(settings, picked=picked)


def _openai_chat(settings: Settings) -> LLM:
    """An explicitly configured OpenAI-compatible endpoint (the default is api.openai.com)."""
    from vchat.llm.openai_backend import DEFAULT_BASE_URL, display_url

    base_url = settings.base_url or DEFAULT_BASE_URL
    local = is_local_url(base_url)
    if not settings.api_key and not local:
        raise LLMError(f"no API key for {display_url(base_url)}: set OPENAI_API_KEY")
    model = settings.model
    if model is None and local:
        # A local server serves whatever it has loaded: take the first model it lists.
        server = _probe(base_url, LIST_TIMEOUT)
        if server is None:
            raise LLMError(f"cannot reach {display_url(base_url)} (is the server running?)")
        if not server.models:
            raise NoModelError(f"{display_url(base_url)} lists no models; load or pull one, or pass --model")
        model = server.models[0]
    return _build(settings, model or DEFAULT_OPENAI_MODEL, base_url, api_key=settings.api_key)


def _build(settings: Settings, model: str, base_url: str, api_key: str | None) -> LLM:
    from vchat.llm.openai_backend import OpenAIChat

    chat = OpenAIChat(
        model,
        base_url=base_url,
        api_key=api_key,
        timeout=settings.timeout,
        temperature=settings.temperature,
        stream=settings.stream,
        max_tokens=settings.max_tokens,
        reply_deadline=settings.reply_deadline,
    )
    chat.constrain = settings.constrain  # "on": the reply grammar goes as the server's structured-output option
    return chat


def _probe(base_url: str, timeout: float, kind: str = "server") -> LocalServer | None:
    """GET {base_url}/models; a LocalServer when it answers like an OpenAI-compatible server, else None."""
    url = base_url.rstrip("/") + "/models"
    # No proxies: a proxy from the environment must not see (or answer for) requests to this machine.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout=timeout) as resp:
            data = json.loads(resp.read(1_000_000))
    except (OSError, ValueError, urllib.error.URLError):
        return None
    # Ports like 8000 and 8080 host all kinds of servers: only an OpenAI-shaped model list counts.
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return None
    models = tuple(str(m["id"]) for m in data["data"] if isinstance(m, dict) and isinstance(m.get("id"), str))
    return LocalServer(kind, base_url.rstrip("/"), models)


def _find_local_server(ports: Sequence[int] | None, host: str, timeout: float, model: str | None) -> LocalServer | None:
    """Probe the ports concurrently; prefer a server that has `model` (or any model), then the first port in order."""
    ports = list(LOCAL_SERVERS) if ports is None else list(ports)
    if not ports:
        return None

    def probe(port: int) -> LocalServer | None:
        return _probe(f"http://{host}:{port}/v1", timeout, LOCAL_SERVERS.get(port, "an OpenAI-compatible server"))

    # All at once: the whole search costs one probe timeout, not one per port.
    with ThreadPoolExecutor(max_workers=len(ports), thread_name_prefix="vchat-probe") as pool:
        found = [server for server in pool.map(probe, ports) if server]
    for server in found:
        # Without a model named, any server that has one will do.
        if (model in server.models) if model is not None else bool(server.models):
            return server
    return found[0] if found else None
