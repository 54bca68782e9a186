"""select_llm: explicit settings > OPENAI_API_KEY > a local server on an (injected) port > the built-in planner."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI
from vchat.config import Settings
from vchat.errors import LLMError, NoModelError
from vchat.llm.base import Message
from vchat.llm.local import LocalLLM
from vchat.llm.openai_backend import LOCAL_PLACEHOLDER_KEY, OpenAIChat
from vchat.llm.scripted import ScriptedLLM
from vchat.llm.select import LOCAL_SERVERS, connect_hint, select_llm

KEY = "sk-test-select-0123456789"
MESSAGES: list[Message] = [{"role": "user", "content": "hi"}]


def free_port() -> int:
    """A port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def html_port() -> Iterator[int]:
    """A port with some other web server on it (200, but not an OpenAI model list)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>my dev server</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_none_does_not_probe() -> None:
    with FakeOpenAI() as fake:
        assert select_llm(Settings(llm="none", api_key=KEY), ports=[fake.port]) is None
        assert fake.requests == []


def test_scripted(tmp_path: Path) -> None:
    path = tmp_path / "replies.txt"
    path.write_text("hello\n---\nbye\n", encoding="utf-8")
    llm = select_llm(Settings(llm=f"scripted:{path}", api_key=KEY))
    assert isinstance(llm, ScriptedLLM)
    assert "".join(llm.complete(MESSAGES)) == "hello"


def test_scripted_bad_file(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="does not exist"):
        select_llm(Settings(llm=f"scripted:{tmp_path / 'missing.json'}"))


def test_api_key_selects_openai_with_default_model_before_probing() -> None:
    with FakeOpenAI() as fake:
        llm = select_llm(Settings(api_key=KEY), ports=[fake.port])
        assert isinstance(llm, OpenAIChat)
        assert llm.name == "gpt-4o-mini @ api.openai.com"
        assert fake.requests == []


def test_api_key_and_model() -> None:
    llm = select_llm(Settings(api_key=KEY, model="gpt-4.1"), ports=[])
    assert llm is not None and llm.name == "gpt-4.1 @ api.openai.com"


def test_settings_reach_the_client() -> None:
    llm = select_llm(Settings(api_key=KEY, timeout=7.5, temperature=0.3), ports=[])
    assert isinstance(llm, OpenAIChat)
    assert (llm.timeout, llm.temperature) == (7.5, 0.3)


def test_openai_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-is-not-read-here")
    with pytest.raises(LLMError, match=r"^no API key for https://api\.openai\.com/v1: set OPENAI_API_KEY$"):
        select_llm(Settings(llm="openai"), ports=[])


def test_remote_base_url_without_key() -> None:
    with pytest.raises(LLMError, match=r"^no API key for https://llm\.example\.com/v1: set OPENAI_API_KEY$"):
        select_llm(Settings(base_url="https://llm.example.com/v1/"), ports=[])


def test_remote_base_url_with_key() -> None:
    llm = select_llm(Settings(base_url="https://llm.example.com/v1", api_key=KEY, model="m"), ports=[])
    assert llm is not None and llm.name == "m @ llm.example.com"


def test_local_base_url_takes_the_first_model_it_lists() -> None:
    with FakeOpenAI(["hi"], models=["llama3.1:8b", "qwen2.5"]) as fake:
        llm = select_llm(Settings(base_url=fake.url), ports=[])
        assert llm is not None and llm.name == f"llama3.1:8b @ 127.0.0.1:{fake.port}"
        assert "".join(llm.complete(MESSAGES)) == "hi"
        assert fake.chat_requests[-1].header("Authorization") == f"Bearer {LOCAL_PLACEHOLDER_KEY}"


def test_local_base_url_with_model_does_not_ask() -> None:
    with FakeOpenAI() as fake:
        llm = select_llm(Settings(base_url=fake.url, model="phi3"), ports=[])
        assert llm is not None and llm.name == f"phi3 @ 127.0.0.1:{fake.port}"
        assert fake.requests == []


def test_local_base_url_unreachable() -> None:
    port = free_port()
    with pytest.raises(LLMError, match=rf"^cannot reach http://127\.0\.0\.1:{port}/v1 \(is the server running\?\)$"):
        select_llm(Settings(base_url=f"http://127.0.0.1:{port}/v1"), ports=[])


def test_local_base_url_without_models() -> None:
    with FakeOpenAI(models=[]) as fake, pytest.raises(NoModelError, match="lists no models"):
        select_llm(Settings(base_url=fake.url), ports=[])


def test_finds_a_local_server() -> None:
    with FakeOpenAI(["found you"], models=["llama3.1"]) as fake:
        llm = select_llm(Settings(), ports=[free_port(), fake.port])
        assert isinstance(llm, OpenAIChat)
        assert llm.name == f"llama3.1 @ 127.0.0.1:{fake.port}"
        assert llm.base_url == fake.url
        assert [r.path for r in fake.requests] == ["/v1/models"]
        assert "".join(llm.complete(MESSAGES)) == "found you"
        # The probe found it: it gets a placeholder, never a real key.
        assert fake.chat_requests[-1].header("Authorization") == f"Bearer {LOCAL_PLACEHOLDER_KEY}"


def test_found_server_uses_the_model_given() -> None:
    with FakeOpenAI(models=["a"]) as first, FakeOpenAI(models=["b", "c"]) as second:
        llm = select_llm(Settings(model="c"), ports=[first.port, second.port])
        assert llm is not None and llm.name == f"c @ 127.0.0.1:{second.port}"
        # Not listed anywhere: the first server in port order, with the model asked for.
        llm = select_llm(Settings(model="zzz"), ports=[first.port, second.port])
        assert llm is not None and llm.name == f"zzz @ 127.0.0.1:{first.port}"


def test_port_order_is_preference_order() -> None:
    with FakeOpenAI(models=["a"]) as first, FakeOpenAI(models=["b"]) as second:
        llm = select_llm(Settings(), ports=[second.port, first.port])
        assert llm is not None and llm.name == f"b @ 127.0.0.1:{second.port}"


def test_a_server_with_models_beats_one_without() -> None:
    with FakeOpenAI(models=[]) as empty, FakeOpenAI(models=["b"]) as full:
        llm = select_llm(Settings(), ports=[empty.port, full.port])
        assert llm is not None and llm.name == f"b @ 127.0.0.1:{full.port}"


def test_found_server_without_models() -> None:
    with FakeOpenAI(models=[]) as fake, pytest.raises(NoModelError, match="lists no models"):
        select_llm(Settings(), ports=[fake.port])


def test_nothing_found_picks_the_builtin_planner(html_port: int) -> None:
    chosen = select_llm(Settings(), ports=[free_port(), free_port(), html_port])
    assert isinstance(chosen, LocalLLM) and chosen.picked
    assert select_llm(Settings(llm="none"), ports=[]) is None


def test_probes_run_concurrently_and_time_out() -> None:
    hung = [socket.socket() for _ in range(3)]
    try:
        for sock in hung:
            sock.bind(("127.0.0.1", 0))
            sock.listen(8)  # accepts connections, never answers
        start = time.monotonic()
        ports = [int(sock.getsockname()[1]) for sock in hung] + [free_port()]
        # Nothing answered in time: the built-in planner.
        assert isinstance(select_llm(Settings(), ports=ports, probe_timeout=0.4), LocalLLM)
        # Three hung servers at 0.4 s each, probed side by side: well under their 1.2 s sum.
        assert time.monotonic() - start < 0.9
    finally:
        for sock in hung:
            sock.close()


def test_no_ports() -> None:
    assert isinstance(select_llm(Settings(), ports=[]), LocalLLM)


def test_default_ports() -> None:
    assert list(LOCAL_SERVERS) == [11434, 1234, 8080, 8000]


def test_connect_hint() -> None:
    hint = connect_hint()
    assert "\n" not in hint
    assert "OPENAI_API_KEY" in hint
    assert "--base-url http://localhost:11434/v1" in hint
