"""OpenAI-compatible chat backend (OpenAI, Ollama, LM Studio, llama.cpp, vLLM…) on the official client."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from vchat.config import is_local_url
from vchat.errors import LLMError, ToolsUnsupported
from vchat.llm import openai_constrain
from vchat.llm.base import LLM, Message, ToolCalls, cut_at_stop, text_of, wire_message
from vchat.llm.openai_call import Call, ReplyInfo
from vchat.llm.openai_errors import Wording, translate
from vchat.llm.openai_stream import text_stream
from vchat.llm.openai_text import display_url, fix_surrogates, host_label, server_message
from vchat.llm.openai_tools import read_reply, refusal
from vchat.llm.retry import wait_before_retry

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the client refuses to start without one.
LOCAL_PLACEHOLDER_KEY = "sk-local-no-key-needed"
# Parameters some models refuse (OpenAI's reasoning models: `stop`, any temperature but the default, and
# `max_tokens`, which they want spelled `max_completion_tokens`).
_DROPPABLE_PARAMS = ("stop", "temperature", "max_tokens")
# A reply may run to this many characters per token of max_tokens before it is cut as runaway: a token is
# about 4 characters of English, so this only trips on a server that ignores max_tokens.
_CHARS_PER_TOKEN_CAP = 16
# Words in a 400 that turns down image content parts (OpenAI, Ollama, vLLM, llama.cpp without mmproj, LM Studio).
_IMAGE_REFUSAL_WORDS = ("image", "vision", "multimodal", "multi-modal", "mmproj", "content must be a string")
_REFUSAL_WORDS = ("unsupported", "not supported", "unrecognized", "unknown", "not allowed", "not permitted", "extra")


class OpenAIChat(LLM):
    """A chat model behind an OpenAI-compatible /chat/completions endpoint; streams by default."""

    supports_tools = True
    base_url: str

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        temperature: float = 0.0,
        stream: bool = True,
        max_retries: int = 2,
        max_tokens: int | None = 1024,
        reply_deadline: float | None = 300.0,
        http_client: Any = None,
    ) -> None:
        """`http_client`: an `httpx2.Client` (the openai client's HTTP library) to send through (a MockTransport)."""
        # Imported here: the client takes a noticeable fraction of a second to import, and `vchat --help` must not.
        import openai

        self.model = model
        # An explicit default, so that the client does not silently pick up OPENAI_BASE_URL on its own
        # (Settings already merged the environment) and `name` always tells the truth.
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = float(timeout)
        self.temperature = temperature
        self.stream = stream
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        # The most a whole model call may take, retries and streaming included (None: no limit).
        self.reply_deadline = reply_deadline
        # A reply longer than this is runaway (the server ignored max_tokens): cut with an error.
        self.max_reply_chars = max(4096, _CHARS_PER_TOKEN_CAP * (max_tokens or 4096))
        self._where = display_url(self.base_url)
        # No fallback to OPENAI_API_KEY here: Settings already read it, and a server found on a local port
        # must not be sent the user's OpenAI key just because it is in the environment.
        key = api_key
        if not key:
            if not is_local_url(self.base_url):
                raise LLMError(f"no API key for {self._where}: set OPENAI_API_KEY")
            key = LOCAL_PLACEHOLDER_KEY
        # Parameters this model refused once; not sent again by this instance.
        self._dropped: set[str] = set()
        # Constrained replies (llm/openai_constrain.py): the setting, the next reply's shape, a notice to give once.
        self.constrain, self._spec, self._reply_spec = "auto", None, None
        self.pending_notice: str | None = None
        # What the worker thread learns about the reply it reads; `last_finish` and `last_usage` once it is over.
        self._reply = ReplyInfo()
        # Set when the server turned down image parts: they are sent as text from then on (the agent says so once).
        self.vision_refused = False
        self._openai: Any = openai
        self._client: Any = openai.OpenAI(
            api_key=key,
            base_url=self.base_url,
            # A short connect timeout: an unreachable host should fail in seconds, a slow model may take minutes.
            timeout=openai.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            # vchat retries itself (`_create`), on the reply deadline's clock; the client's retries would not be.
            max_retries=0,
            http_client=http_client,
        )
        self._words = Wording(
            openai,
            self._where,
            model,
            key,
            self.timeout,
            reply_deadline,
            max_tokens,
            self.max_reply_chars,
        )

    @property
    def name(self) -> str:
        """`model @ host`, e.g. `gpt-4o-mini @ api.openai.com`."""
        return f"{self.model} @ {host_label(self.base_url)}"

    @property
    def supports_vision(self) -> bool:
        """Whether the model name belongs to a family known to take images (`vision = "auto"` asks this)."""
        from vchat.llm.pixels import model_sees

        return model_sees(self.model) and not self.vision_refused

    @property
    def stop_supported(self) -> bool:
        """False once the server refused the `stop` parameter (the reply is then cut client-side)."""
        return "stop" not in self._dropped

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model!r}, base_url={self._where!r}, stream={self.stream})"

    # -- public API ------------------------------------------------------------------------

    def complete(self, messages: Sequence[Message], stop: Sequence[str] | None = None) -> Iterator[str]:
        """Yield the reply in chunks, cut at any stop string; raise a one-line LLMError on any failure."""
        stops = [s for s in (stop or ()) if s]
        payload: list[dict[str, Any]] = [
            {"role": m["role"], "content": text_of(m) if self.vision_refused else m["content"]} for m in messages
        ]
        self._reply = ReplyInfo()
        self.last_finish = self.last_usage = None
        self._reply_spec, self._spec = self._spec, None  # a spec is for one reply

        def reply(call: Call, started: float) -> Iterator[str]:
            response = self._create(payload, stops, started, call)
            if self.stream:
                yield from text_stream(self._words, self._reply, response, stops, call)
                return
            text = self._whole_reply(response, stops)
            if len(text) > self.max_reply_chars:
                raise self._words.runaway(len(text))
            if text:
                yield text

        return self._bounded(reply)

    def _bounded(self, produce: Callable[[Call, float], Iterator[Any]]) -> Iterator[Any]:
        """Run `produce` on a worker thread and pass its items on, ending by `reply_deadline` whatever it does.

        The whole call, retries and streaming included, is bounded even when the server keeps
        the connection busy (keep-alive comments, a trickle): the caller stops waiting at the
        deadline and the worker hangs up at its next chunk.
        """
        started = time.monotonic()
        call = Call()

        def work() -> None:
            try:
                for item in produce(call, started):
                    if call.abandoned.is_set():
                        return
                    if isinstance(item, str):
                        call.received += len(item)
                    call.queue.put(("item", item))
                call.queue.put(("end", None))
            except LLMError as exc:
                call.queue.put(("error", exc))
            except Exception as exc:  # a client bug or an odd transport error: still one line for the user
                call.queue.put(("error", LLMError(self._words.clean(f"{self._where}: {type(exc).__name__}: {exc}"))))

        threading.Thread(target=work, daemon=True, name="vchat-llm").start()
        try:
            while True:
                wait = None if self.reply_deadline is None else started + self.reply_deadline - time.monotonic()
                try:
                    if wait is not None and wait <= 0:
                        raise queue.Empty
                    kind, value = call.queue.get(timeout=wait)
                except queue.Empty:
                    raise self._words.past_deadline(call.received) from None
                if kind == "item":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            # Finished, failed, cancelled (Ctrl-C closes this generator) or past the deadline: the worker stops,
            # at its next chunk or, for a server that sends only keep-alive comments, when the link is closed.
            call.abandoned.set()
            self.last_finish, self.last_usage = self._reply.finish, self._reply.usage
            if call.stream is not None:
                with contextlib.suppress(Exception):
                    call.stream.close()

    def _whole_reply(self, response: Any, stops: list[str]) -> str:
        try:
            text = response.choices[0].message.content or ""
            finish = response.choices[0].finish_reason
        except (AttributeError, IndexError, KeyError, TypeError):
            raise self._words.garbage() from None
        self._reply.note_usage(response)
        # Cut here too: the server may have ignored `stop`, or we may not have sent it.
        text, hit = cut_at_stop(fix_surrogates(str(text)), stops)
        # A stop string before the cap means the step itself ended whole, whatever came after it.
        self._reply.finish = "stop" if hit else (str(finish) if finish else None)
        return text

    def complete_with_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> Iterator[str | ToolCalls]:
        """Native tool calling (`protocol = "tools"`): text chunks, then a ToolCalls item if tools were called."""
        payload = [wire_message(m) for m in messages]
        if self.vision_refused:
            payload = [{**m, "content": text_of(m)} for m in payload]  # type: ignore[arg-type]
        self._reply = ReplyInfo()
        self.last_finish = self.last_usage = None

        def reply(call: Call, started: float) -> Iterator[str | ToolCalls]:
            # Through `_create`, as a text-protocol request: a refused optional parameter is dropped and the request
            # sent again, images a server turns down go as text, and retries stay within `reply_deadline`.
            response = self._create(payload, [], started, call, tools=tools)
            yield from read_reply(self._words, self._reply, response, self.stream, call)

        return self._bounded(reply)

    def list_models(self) -> list[str]:
        """The model ids the server lists (first page only); raise LLMError when it cannot be asked."""
        try:
            return self._fetch_models()
        except Exception as exc:
            if isinstance(exc, self._openai.NotFoundError):
                raise LLMError(f"{self._where} has no /models endpoint (HTTP 404)") from None
            raise self._translate(exc) from None

    def _fetch_models(self) -> list[str]:
        # Quick and without retries: this only decorates an error message or answers `vchat models`.
        page = self._client.with_options(timeout=min(self.timeout, 5.0), max_retries=0).models.list()
        return [str(m.id) for m in page.data]

    # -- requests --------------------------------------------------------------------------

    def _create(
        self,
        payload: list[dict[str, Any]],
        stops: list[str],
        started: float | None = None,
        call: Call | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Any:
        """Send the request, on one clock with `reply_deadline`: retries and their waits come out of the time left.

        A refused optional parameter is dropped and the request sent again (once per parameter),
        images a server turns down go as text; neither counts as a retry. With `tools`, a refusal
        of native tool calling raises ToolsUnsupported.
        """
        started = time.monotonic() if started is None else started
        deadline = None if self.reply_deadline is None else started + self.reply_deadline
        retries = 0
        while True:
            kwargs = self._request_args(payload, stops, tools)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise self._words.past_deadline(0)
            limit = self.timeout if left is None else min(self.timeout, left)
            # The client's own retries are off (max_retries=0): each attempt gets what is left of the deadline.
            kwargs["timeout"] = self._openai.Timeout(limit, connect=min(limit, 10.0))
            try:
                return self._client.chat.completions.create(**kwargs)
            except Exception as exc:
                if self._refuses_images(exc, payload):
                    # Vision off for this backend; the same turn goes on with the images named by handle only.
                    self.vision_refused = True
                    payload[:] = [{**m, "content": text_of(m)} for m in payload]  # type: ignore[arg-type]
                    continue
                status = getattr(exc, "status_code", None)
                if isinstance(exc, self._openai.APIStatusError) and openai_constrain.refuses(
                    kwargs, status, server_message(exc)
                ):
                    self._dropped.add(openai_constrain.OPTION)
                    self.pending_notice = openai_constrain.notice(self._where)
                    continue
                refused = self._refused_param(exc, kwargs)
                if refused is not None:
                    self._dropped.add(refused)
                    continue
                if tools is not None:
                    reason = refusal(self._openai, exc)
                    if reason is not None:
                        message = self._words.clean(f"{self._where} refused native tool calls: {reason}")
                        raise ToolsUnsupported(message) from None
                wait = wait_before_retry(exc, retries, self._openai) if retries < self.max_retries else None
                if wait is not None and (deadline is None or time.monotonic() + wait < deadline):
                    retries += 1
                    if call is not None and call.abandoned.wait(wait):
                        raise self._translate(exc, time.monotonic() - started, retries) from None
                    if call is None:
                        time.sleep(wait)
                    continue
                error = self._translate(exc, time.monotonic() - started, retries + 1)
                if wait is not None:  # worth another try, but the deadline comes first
                    error = LLMError(f"{error}; no time left within reply_deadline ({self.reply_deadline:g}s) to retry")
                raise error from None

    def _request_args(
        self, payload: list[dict[str, Any]], stops: list[str], tools: Sequence[dict[str, Any]] | None
    ) -> dict[str, Any]:
        """The request's parameters, without those this model refused (`max_tokens` respelled if need be)."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": payload, "stream": self.stream}
        if tools is not None:
            kwargs["tools"] = list(tools)
        if self.max_tokens and "max_tokens" not in self._dropped:
            kwargs["max_tokens"] = self.max_tokens
        elif self.max_tokens and "max_completion_tokens" not in self._dropped:
            # OpenAI's reasoning models refuse `max_tokens` and take this spelling instead.
            kwargs["max_completion_tokens"] = self.max_tokens
        if stops and "stop" not in self._dropped:
            # OpenAI takes at most 4; any others are still cut client-side.
            kwargs["stop"] = stops[:4]
        if "temperature" not in self._dropped:
            kwargs["temperature"] = self.temperature
        extra = openai_constrain.option(
            self._reply_spec, self.constrain, self.max_tokens, openai_constrain.OPTION in self._dropped
        )
        if extra is not None and tools is None:
            kwargs["extra_body"] = extra
        return kwargs

    def take_notice(self) -> str | None:
        """The notice kept when the server refused the grammar, once."""
        notice, self.pending_notice = self.pending_notice, None
        return notice

    def expect(self, spec: Any) -> None:
        """The shape of the next ReAct reply (sent as a grammar when `constrain = "on"`)."""
        self._spec = spec

    def _refuses_images(self, exc: Exception, payload: list[dict[str, Any]]) -> bool:
        """True for a 400/415/422 that complains about image content in a request that carried some."""
        status = getattr(exc, "status_code", None)
        if not isinstance(exc, self._openai.APIStatusError) or status not in (400, 415, 422):
            return False
        carried = any(
            isinstance(m["content"], list) and any(p.get("type") == "image_url" for p in m["content"]) for m in payload
        )
        message = server_message(exc).lower()
        return carried and any(word in message for word in _IMAGE_REFUSAL_WORDS)

    def _refused_param(self, exc: Exception, kwargs: dict[str, Any]) -> str | None:
        """The sent parameter a 400/422 complains about (`stop`, `temperature`), if that is the complaint."""
        status = getattr(exc, "status_code", None)
        if not isinstance(exc, self._openai.APIStatusError) or status not in (400, 422):
            return None
        message = server_message(exc).lower()
        param = getattr(exc, "param", None)
        for name in (*_DROPPABLE_PARAMS, "max_completion_tokens"):
            if name not in kwargs or name in self._dropped:
                continue
            if param == name or (name in message and any(word in message for word in _REFUSAL_WORDS)):
                return name
        return None

    def _translate(self, exc: Exception, elapsed: float | None = None, attempts: int = 1) -> LLMError:
        """Map a client exception (after `attempts` tries) to a one-line, actionable LLMError."""
        return translate(self._words, exc, elapsed, attempts, self._fetch_models)
