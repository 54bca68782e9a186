"""A small OpenAI-compatible HTTP server on 127.0.0.1 for tests: scripted replies, recorded requests, faults.

Usage::

    with FakeOpenAI(replies=["Hello!", Fault.rate_limited(), "after the retry"]) as fake:
        client = OpenAIChat("fake-model", base_url=fake.url)   # fake.url ends in /v1
        ...
        fake.push("one more reply")
        assert fake.requests[-1].messages[0]["content"] == "..."

Each POST /v1/chat/completions takes the next item of the queue: a plain string (the reply text), a
`Reply` (text with timing), or a `Fault` (what goes wrong for that one request). A fault that ends in
an error does not consume anything else, so `[Fault.rate_limited(), "ok"]` is "429, then the retry
gets ok". Like a real server, a reply is cut at the request's `stop` strings.

The fake server also works as a standalone process for end-to-end tests of the CLI::

    python tests/fake_openai.py replies.json     # prints the base URL, serves until killed
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

DEFAULT_MODEL = "fake-model"


@dataclass
class Reply:
    """A scripted reply: its text, and optional timing (before the first byte, between streamed chunks)."""

    text: str
    delay: float = 0.0
    chunk_delay: float = 0.0
    chunk_size: int = 4
    finish_reason: str | None = "stop"
    # Native tool calls to answer with: {"name": ..., "arguments": dict or JSON text, "id": optional}.
    tool_calls: list[dict[str, Any]] | None = None


@dataclass
class Fault:
    """Something that goes wrong for one request; build with the classmethods below."""

    kind: str  # status | delay | cut | garbage | refuse_stop | refuse_tools | endless | keepalive | body
    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reply: str = ""
    seconds: float = 0.0
    after: int = 0

    @classmethod
    def status_error(
        cls, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None, **headers: str
    ) -> Fault:
        """Answer with `status` and an OpenAI-shaped error body."""
        body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
        return cls("status", status=status, body=body, headers=dict(headers))

    @classmethod
    def unauthorized(cls) -> Fault:
        """401 like OpenAI's for a bad key."""
        return cls.status_error(
            401,
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    @classmethod
    def model_not_found(cls, model: str = "the model") -> Fault:
        """404 like OpenAI's for an unknown model."""
        return cls.status_error(
            404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
        )

    @classmethod
    def rate_limited(cls, retry_after_ms: int = 10) -> Fault:
        """429 with a short retry-after-ms, so the client's own retry comes quickly."""
        return cls.status_error(
            429,
            "Rate limit reached for requests.",
            type_="requests",
            code="rate_limit_exceeded",
            **{"retry-after-ms": str(retry_after_ms)},
        )

    @classmethod
    def server_error(cls, status: int = 500, retry_after_ms: int = 10) -> Fault:
        """5xx with a short retry-after-ms (the client retries these too)."""
        return cls.status_error(
            status,
            "The server had an error while processing your request.",
            type_="server_error",
            **{"retry-after-ms": str(retry_after_ms)},
        )

    @classmethod
    def delay(cls, seconds: float, reply: str = "too late") -> Fault:
        """Wait `seconds` before answering (longer than the client's timeout, for timeout tests)."""
        return cls("delay", seconds=seconds, reply=reply)

    @classmethod
    def cut(cls, reply: str, after: int) -> Fault:
        """Stream the first `after` characters of `reply`, then close the connection without [DONE]."""
        return cls("cut", reply=reply, after=after)

    @classmethod
    def garbage(cls, reply: str = "Thought: ", junk: str = "{this is not json") -> Fault:
        """Stream `reply`, then an event whose data is not JSON (non-streamed: a body that is not JSON)."""
        return cls("garbage", reply=reply, body={"junk": junk})

    @classmethod
    def status_body(cls, status: int, body: str, content_type: str = "application/json") -> Fault:
        """Answer with `status` and exactly this body (any text: escapes, HTML, not JSON at all)."""
        return cls("body", status=status, reply=body, headers={"Content-Type": content_type})

    @classmethod
    def endless(cls, piece: str = "la ", chunk_delay: float = 0.0) -> Fault:
        """Stream `piece` again and again, never finishing, until the client hangs up (a runaway model)."""
        return cls("endless", reply=piece, seconds=chunk_delay)

    @classmethod
    def keepalive(cls, every: float = 0.1) -> Fault:
        """Open a stream and send only SSE comments (`: ping`) forever: the link looks alive, no reply comes."""
        return cls("keepalive", seconds=every)

    @classmethod
    def refuse_stop(cls) -> Fault:
        """400 like OpenAI's reasoning models when the request carries `stop` (skipped when it does not)."""
        fault = cls.status_error(
            400, "Unsupported parameter: 'stop' is not supported with this model.", code="unsupported_parameter"
        )
        fault.kind = "refuse_stop"
        if fault.body is not None:
            fault.body["error"]["param"] = "stop"
        return fault

    @classmethod
    def refuse_tools(cls) -> Fault:
        """400 like vLLM's without tool support, for a request that carries `tools` (skipped otherwise)."""
        fault = cls.status_error(
            400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
        )
        fault.kind = "refuse_tools"
        return fault


Item = str | Reply | Fault


@dataclass
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any = None
    raw: bytes = b""  # the body exactly as received (for byte-level comparisons of requests)

    def header(self, name: str) -> str | None:
        """A request header, by case-insensitive name."""
        return self.headers.get(name.lower())

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages sent (empty for requests without a body)."""
        return list((self.body or {}).get("messages", []))

    @property
    def stop(self) -> list[str] | None:
        """The `stop` strings sent, as a list, or None when absent."""
        stop = (self.body or {}).get("stop")
        return [stop] if isinstance(stop, str) else stop

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        """The `tools` (function specs) sent, or None when absent."""
        return (self.body or {}).get("tools")

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed reply."""
        return bool((self.body or {}).get("stream"))


def _has_images(body: dict[str, Any]) -> bool:
    """Whether any message of a chat request carries an image content part."""
    return any(
        isinstance(m.get("content"), list) and any(p.get("type") == "image_url" for p in m["content"])
        for m in body.get("messages", [])
        if isinstance(m, dict)
    )


def _cut_at(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    hits = [i for i in (text.find(s) for s in (stop or []) if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


class FakeOpenAI:
    """An OpenAI-compatible server on 127.0.0.1 (port 0), run in a thread; use as a context manager."""

    def __init__(
        self,
        replies: Iterable[Item] = (),
        *,
        models: Sequence[str] | None = None,
        api_key: str | None = None,
        refuse_stop: bool = False,
        refuse_tools: bool = False,
        refuse_images: bool = False,
        default: str | None = None,
    ) -> None:
        # models=None accepts any model name (and lists DEFAULT_MODEL); a list makes unknown models 404.
        self.models = list(models) if models is not None else None
        self.api_key = api_key
        self.refuse_stop = refuse_stop
        self.refuse_tools = refuse_tools
        # Like a text-only model behind a server that checks content (llama.cpp without mmproj, vLLM, Ollama).
        self.refuse_images = refuse_images
        self.default = default
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Item] = deque(replies)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread: threading.Thread | None = None

    # -- scripting -------------------------------------------------------------------------

    def push(self, *items: Item) -> None:
        """Queue replies or faults for the next chat requests."""
        with self._lock:
            self._queue.extend(items)

    @property
    def pending(self) -> int:
        """How many queued items no request has taken yet."""
        with self._lock:
            return len(self._queue)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The POST /chat/completions requests received, in order."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for an OpenAI client, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; delayed replies in flight are abandoned."""
        self._closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- used by the handler ---------------------------------------------------------------

    def _next(self, has_stop: bool, has_tools: bool = False) -> Item | None:
        with self._lock:
            while self._queue:
                item = self._queue.popleft()
                # A stop- or tools-refusing fault only applies to requests that carry `stop` / `tools`.
                if isinstance(item, Fault) and item.kind == "refuse_stop" and not has_stop:
                    continue
                if isinstance(item, Fault) and item.kind == "refuse_tools" and not has_tools:
                    continue
                return item
        return self.default

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server is closing; False when it is."""
        return not self._closing.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are part of the tests; their broken pipes are not news.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each response waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing --------------------------------------------------------------------------

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._send_bytes(status, data, headers)

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _error(self, status: int, message: str, code: str | None = None, **headers: str) -> None:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        self._send_json(status, body, headers)

    def _record(self, body: Any, raw: bytes = b"") -> None:
        fake = self.server.fake
        with fake._lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.requests.append(RecordedRequest(self.command, self.path, headers, body, raw))

    def _authorized(self) -> bool:
        key = self.server.fake.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send_json(401, Fault.unauthorized().body)
        return False

    # -- routes ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._record(None)
        if not self._authorized():
            return
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            names = [DEFAULT_MODEL] if self.server.fake.models is None else self.server.fake.models
            data = [{"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in names]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no route for GET {self.path}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._record(raw.decode(errors="replace"), raw)
            self._error(400, "request body is not JSON")
            return
        self._record(body, raw)
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route for POST {self.path}")
            return
        if not self._authorized():
            return
        self._chat(body)

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.server.fake
        model = str(body.get("model", ""))
        stop = body.get("stop")
        stop_list = [stop] if isinstance(stop, str) else list(stop or [])
        if fake.models is not None and model not in fake.models:
            self._send_json(404, Fault.model_not_found(model).body)
            return
        if fake.refuse_stop and stop_list:
            self._send_json(400, Fault.refuse_stop().body)
            return
        if fake.refuse_tools and body.get("tools"):
            self._send_json(400, Fault.refuse_tools().body)
            return
        if fake.refuse_images and _has_images(body):
            self._error(400, "image input is not supported by this model")
            return
        item = fake._next(bool(stop_list), bool(body.get("tools")))
        if item is None:
            # Not retried by the client (x-should-retry), so a test that runs dry fails at once and says why.
            self._error(500, "fake server: no scripted reply left", **{"x-should-retry": "false"})
            return
        reply = Reply(item) if isinstance(item, str) else item
        stream = bool(body.get("stream"))
        if isinstance(reply, Fault):
            self._fault(reply, model, stream, stop_list)
            return
        if reply.delay and not fake._sleep(reply.delay):
            return
        text, was_cut = _cut_at(reply.text, stop_list)
        finish = "stop" if was_cut else reply.finish_reason
        if reply.tool_calls:
            calls = _tool_calls(reply.tool_calls)
            # "length": a reply cut at max_tokens, whose last call may have lost the end of its arguments.
            finish = "length" if reply.finish_reason == "length" else "tool_calls"
            if stream:
                self._stream(text, model, finish, chunk_size=reply.chunk_size, tool_calls=calls)
            else:
                self._send_json(200, _completion(text, model, finish, calls))
            return
        if stream:
            self._stream(text, model, finish, chunk_size=reply.chunk_size, chunk_delay=reply.chunk_delay)
        else:
            self._send_json(200, _completion(text, model, finish))

    def _fault(self, fault: Fault, model: str, stream: bool, stop: list[str]) -> None:
        fake = self.server.fake
        if fault.kind in ("status", "refuse_stop", "refuse_tools"):
            self._send_json(fault.status, fault.body, fault.headers)
        elif fault.kind == "delay":
            if fake._sleep(fault.seconds):
                text, _ = _cut_at(fault.reply, stop)
                if stream:
                    self._stream(text, model, "stop")
                else:
                    self._send_json(200, _completion(text, model, "stop"))
        elif fault.kind == "cut":
            if stream:
                self._stream(fault.reply[: fault.after], model, None, done=False)
            else:
                # Promise the whole body, send part of it, hang up.
                data = json.dumps(_completion(fault.reply, model, "stop")).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: max(1, min(fault.after, len(data) - 1))])
                self.wfile.flush()
            self.close_connection = True
        elif fault.kind == "body":
            data = fault.reply.encode("utf-8", "surrogatepass")
            self.send_response(fault.status)
            self.send_header("Content-Length", str(len(data)))
            for name, value in fault.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        elif fault.kind in ("endless", "keepalive"):
            self._start_stream()
            first = True
            while not fake._closing.is_set():
                if fault.kind == "keepalive":
                    self._write_chunk(b": ping\n\n")
                else:
                    delta: dict[str, Any] = {"content": fault.reply}
                    if first:
                        delta["role"] = "assistant"
                    self._write_chunk(_sse(_chunk(model, delta, None)))
                first = False
                if fault.seconds and not fake._sleep(fault.seconds):
                    break
            self.close_connection = True
        elif fault.kind == "garbage":
            junk = str((fault.body or {}).get("junk", "{garbage"))
            if stream:
                self._stream(fault.reply, model, None, done=False, junk=junk)
            else:
                self._send_bytes(200, junk.encode())
        else:  # pragma: no cover - a typo in a test
            self._error(500, f"fake server: unknown fault {fault.kind!r}")

    # -- streaming -------------------------------------------------------------------------

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(
        self,
        text: str,
        model: str,
        finish: str | None,
        *,
        chunk_size: int = 4,
        chunk_delay: float = 0.0,
        done: bool = True,
        junk: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
    ) -> None:
        """SSE over chunked transfer encoding; done=False hangs up without the final chunk, like a dropped link."""
        fake = self.server.fake
        self._start_stream()
        pieces = [text[i : i + chunk_size] for i in range(0, len(text), max(1, chunk_size))]
        first = True
        for piece in pieces:
            if chunk_delay and not first and not fake._sleep(chunk_delay):
                return
            delta: dict[str, Any] = {"content": piece}
            if first:
                delta["role"] = "assistant"
            first = False
            self._write_chunk(_sse(_chunk(model, delta, None)))
        for index, call in enumerate(tool_calls or []):
            # Like OpenAI: id and name in the first delta of a call, the arguments after it in pieces.
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"]},
            }
            head["function"]["arguments"] = ""
            self._write_chunk(_sse(_chunk(model, {"tool_calls": [head]}, None)))
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), max(1, chunk_size)):
                piece = {"index": index, "function": {"arguments": arguments[start : start + chunk_size]}}
                self._write_chunk(_sse(_chunk(model, {"tool_calls": [piece]}, None)))
        if junk is not None:
            self._write_chunk(f"data: {junk}\n\n".encode())
        if not done:
            self.close_connection = True
            return
        self._write_chunk(_sse(_chunk(model, {}, finish)))
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scripted calls in OpenAI's shape: ids filled in, arguments as JSON text."""
    out = []
    for index, call in enumerate(calls):
        arguments = call.get("arguments", {})
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        out.append(
            {
                "id": call.get("id", f"call_{index}"),
                "type": "function",
                "function": {"name": call["name"], "arguments": text},
            }
        )
    return out


def _completion(
    text: str, model: str, finish: str | None, tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if tool_calls else text)}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish or "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _load_items(path: str) -> list[Item]:
    """Replies for the standalone server: a JSON list of strings or {"reply", "delay", "finish_reason"} objects."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    items: list[Item] = []
    for entry in data:
        if isinstance(entry, str):
            items.append(entry)
        else:
            items.append(
                Reply(
                    entry["reply"],
                    delay=entry.get("delay", 0.0),
                    chunk_delay=entry.get("chunk_delay", 0.0),
                    finish_reason=entry.get("finish_reason", "stop"),
                )
            )
    return items


if __name__ == "__main__":
    server = FakeOpenAI(_load_items(sys.argv[1]) if len(sys.argv) > 1 else (), default=None)
    server.start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.close()
