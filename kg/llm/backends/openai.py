"""OpenAI-compatible chat-completions backend (OpenAI, vLLM, Ollama, llama.cpp server).

Standard library HTTP only.  Retries 429, 5xx, timeouts and connection errors with
exponential backoff and full jitter (honouring ``Retry-After``), runs at most
``concurrency`` requests at once, and asks for structured output: with the reply's
keys known, ``response_format = {"type": "json_schema", ...}`` (an object of string
lists, closed vocabularies as ``enum``; vLLM, OpenAI, llama.cpp and Ollama enforce it),
else ``{"type": "json_object"}``.  A server that rejects a format (HTTP 400/422
naming it) gets the next simpler one (json_schema -> json_object -> plain text);
the downgrade is remembered for the rest of the run.  The API key is read from
the environment variable named in the config and never logged or cached.

Redirects: urllib's default handler copies ``Authorization`` to whatever host a
redirect names, so it is not used.  A 307/308 to the same origin (scheme, host,
port) is followed with the same method, body and key, at most
:data:`MAX_REDIRECTS` times; a redirect to another origin (or a 301/302/303, which
would turn the POST into a GET) is refused with :class:`RedirectRefused` and the key
is never sent anywhere but the configured origin.  HTTP 401/403 raise
:class:`AuthenticationError`.  Both say that every call would fail the same way, so
a build stops on them (``stops_build``) instead of failing item after item.

Bounds: each request is limited to ``timeout_s`` per socket operation and, while the
reply is read, in total; a reply body is at most :data:`MAX_RESPONSE_BYTES`; retries
are at most ``max_retries`` with sleeps capped by ``backoff_max_s`` (``Retry-After``
included); format fallbacks happen at most twice per run.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kg.errors import BackendError, BackendUnavailable, ConfigError
from kg.llm import safejson
from kg.llm.backends.base import Completion, LLMBackend, Message

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529}
_FATAL_STATUS = {401, 403, 404}
_AUTH_STATUS = {401, 403}
_REDIRECT_STATUS = {301, 302, 303, 307, 308}
_KEEP_METHOD_REDIRECTS = {307, 308}  # the others turn a POST into a GET
#: same-origin redirects followed per request
MAX_REDIRECTS = 5
#: largest reply body read (bytes); a chat completion is a few kilobytes
MAX_RESPONSE_BYTES = 16 * 2**20
# The HTTP body is the server's JSON, not the model's text: its size is capped while
# reading, its nesting and its integers (parse_int) are bounded, but digits inside strings
# are not checked (the content may hold any text; kg.parse bounds that), so a reply
# whose text holds a long number is not mistaken for a broken server and retried.
_RESPONSE_LIMITS = safejson.Limits(max_chars=MAX_RESPONSE_BYTES, max_depth=64, max_digits=100)


class AuthenticationError(BackendError):
    """HTTP 401/403: the API key is missing, wrong or not allowed; no call can succeed."""

    stops_build = True


class RedirectRefused(BackendError):
    """The server redirected to another origin (or to a GET); not followed, the key not sent."""

    stops_build = True


@dataclass
class OpenAIConfig:
    """Settings of the OpenAI-compatible backend.

    Attributes:
        base_url: endpoint root including ``/v1`` (``http://127.0.0.1:8000/v1``).
        model: model name the server knows.
        api_key_env: name of the environment variable holding the API key (may be unset
            for local servers).  The key itself never appears in configs or logs.
        timeout_s: per-request timeout (connect + read).
        max_retries: retries after the first attempt for retryable failures.
        backoff_base_s: first backoff; doubles each retry (full jitter).
        backoff_max_s: cap of one backoff sleep (also caps ``Retry-After``).
        concurrency: requests in flight at once.
        json_mode: ``"auto"`` (JSON schema when the keys are known, else JSON object;
            falls back when unsupported), ``"schema"`` (JSON schema, no fallback),
            ``"on"`` (JSON object, no fallback) or ``"off"``.
        temperature: sampling temperature (0 = greedy, reproducible where the server is).
        seed: passed to servers that support seeded sampling.
        extra_body: extra JSON fields for the request (e.g. vLLM ``guided_json``).
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    concurrency: int = 4
    json_mode: str = "auto"
    temperature: float = 0.0
    seed: int | None = 0
    extra_body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"openai.base_url must start with http:// or https://, got {self.base_url!r}"
            )
        if self.json_mode not in ("auto", "schema", "on", "off"):
            raise ConfigError("openai.json_mode must be 'auto', 'schema', 'on' or 'off'")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout_s <= 0:
            raise ConfigError(
                "openai.concurrency >= 1, max_retries >= 0 and timeout_s > 0 are required"
            )


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class OpenAIBackend(LLMBackend):
    """Chat completions over HTTP with retries and bounded concurrency."""

    name = "openai"

    def __init__(self, config: OpenAIConfig, sleep=time.sleep) -> None:
        self.config = config
        self.model = config.model
        self.max_batch = max(1, config.concurrency)
        self._json_supported = config.json_mode != "off"
        # structured-output levels still believed to work: json_schema, json_object
        self._schema_supported = config.json_mode in ("auto", "schema")
        self._lock = threading.Lock()
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(
            max_workers=config.concurrency, thread_name_prefix="kg-openai"
        )
        # no urllib redirect handling: _post follows same-origin 307/308 itself
        self._opener = urllib.request.build_opener(_NoRedirects)
        self.retries = 0  # retried attempts across the run (reported in run stats)

    def identity(self) -> dict[str, Any]:
        # the URL host is not part of the key: the same model behind another proxy gives the same text
        return {
            "backend": self.name,
            "model": self.config.model,
            "temperature": self.config.temperature,
            "seed": self.config.seed,
            "json_mode": self.config.json_mode,
            "extra_body": self.config.extra_body or {},
        }

    # -- HTTP ----------------------------------------------------------------------
    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        origin = _origin(url)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode()
        deadline = time.monotonic() + cfg.timeout_s
        for _ in range(MAX_REDIRECTS + 1):
            if _origin(url) != origin:  # never reached: _redirect_target refuses first
                raise RedirectRefused(
                    f"{cfg.base_url}: refusing to send the API key to {_origin(url)}"
                )
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with self._opener.open(request, timeout=cfg.timeout_s) as response:
                    payload = _read_bounded(response, deadline, cfg.base_url)
                break
            except urllib.error.HTTPError as exc:
                if exc.code in _REDIRECT_STATUS:
                    _close(exc)
                    url = self._redirect_target(url, exc)
                    continue
                detail = _read_detail(exc)
                if exc.code in _RETRY_STATUS:
                    retry_after = _parse_retry_after(
                        exc.headers.get("Retry-After") if exc.headers else None
                    )
                    raise _Retryable(f"HTTP {exc.code}", retry_after) from None
                raise _HTTPFailure(exc.code, detail) from None
            except (
                urllib.error.URLError,
                TimeoutError,
                ConnectionError,
                http.client.HTTPException,
                OSError,
            ) as exc:
                raise _Retryable(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
        else:
            raise RedirectRefused(f"{cfg.base_url}: more than {MAX_REDIRECTS} redirects")
        try:
            text = payload.decode(json.detect_encoding(payload), "surrogatepass")
            if safejson.nesting(text) > _RESPONSE_LIMITS.max_depth:
                raise safejson.Rejected("too_deep")
            return safejson.decode(text, _RESPONSE_LIMITS)
        except (safejson.Rejected, UnicodeDecodeError, LookupError):
            raise _Retryable("server sent a body that is not JSON") from None

    def _redirect_target(self, url: str, exc: urllib.error.HTTPError) -> str:
        """Where a same-origin 307/308 leads; anything else raises :class:`RedirectRefused`."""
        base = self.config.base_url
        location = exc.headers.get("Location") if exc.headers else None
        if not location:
            raise RedirectRefused(f"{base}: HTTP {exc.code} redirect without a Location header")
        target = urllib.parse.urljoin(url, location.strip())
        if _origin(target) != _origin(url):
            raise RedirectRefused(
                f"{base}: HTTP {exc.code} redirect to another origin ({_origin(target)}) refused, so the API key is "
                f"not sent there; if that server is the right one, use it as the base URL"
            )
        if exc.code not in _KEEP_METHOD_REDIRECTS:
            raise RedirectRefused(
                f"{base}: HTTP {exc.code} redirect to {_safe_url(target)} refused (it would turn the POST into a "
                f"GET); use the final address as the base URL"
            )
        log.info("following HTTP %d redirect to %s", exc.code, _safe_url(target))
        return target

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        json_mode: bool = True,
        keys: Sequence[str] | None = None,
        spans_from: str | None = None,
        choices: Mapping[str, Sequence[str]] | None = None,
    ) -> Completion:
        # ``keys`` is only a hint here: the prompt already asks for them and the parser
        # and validator enforce the schema (servers differ in structured-output support)
        attempt = 0
        while True:
            use_json = json_mode and self._json_supported
            use_schema = use_json and bool(keys) and self._schema_supported
            body = self._body(messages, max_tokens, use_json, use_schema, keys, choices)
            try:
                return _completion_from(self._post(body))
            except _HTTPFailure as exc:
                if self._downgraded(exc, use_json, use_schema):
                    continue
                raise self._http_error(exc) from None
            except _Retryable as exc:
                self._sleep(self._retry_delay(exc, attempt))
                attempt += 1

    def _body(
        self,
        messages: list[Message],
        max_tokens: int,
        use_json: bool,
        use_schema: bool,
        keys: Sequence[str] | None,
        choices: Mapping[str, Sequence[str]] | None,
    ) -> dict[str, Any]:
        """The chat-completions request body."""
        cfg = self.config
        body: dict[str, Any] = {
            "model": cfg.model,
            "messages": messages,
            "temperature": cfg.temperature,
            "max_tokens": max_tokens,
        }
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        if use_schema:
            body["response_format"] = json_schema_format(list(keys or []), choices)
        elif use_json:
            body["response_format"] = {"type": "json_object"}
        if cfg.extra_body:
            body.update(cfg.extra_body)
        return body

    def _downgraded(self, exc: _HTTPFailure, use_json: bool, use_schema: bool) -> bool:
        """With ``json_mode: auto``, a server that rejects the response format is asked
        again with a plainer one (json_schema -> json_object -> none); true when so."""
        if self.config.json_mode != "auto":
            return False
        rejected = exc.status in (400, 422) and any(
            w in exc.detail for w in ("response_format", "json_schema", "json_object")
        )
        if not rejected:
            return False
        if use_schema:
            with self._lock:
                if self._schema_supported:
                    log.warning("server does not support json_schema output; using json_object")
                self._schema_supported = False
            return True
        if use_json:
            with self._lock:
                if self._json_supported:
                    log.warning(
                        "server does not support response_format; continuing without JSON mode"
                    )
                self._json_supported = False
            return True
        return False

    def _http_error(self, exc: _HTTPFailure) -> BackendError:
        """The error of an HTTP failure retrying will not fix."""
        cfg = self.config
        if exc.status in _AUTH_STATUS:
            return AuthenticationError(
                f"{cfg.base_url}: HTTP {exc.status} ({exc.detail[:200]}); check the API key variable "
                f"{cfg.api_key_env} and the account's access to model {cfg.model!r}"
            )
        if exc.status in _FATAL_STATUS:
            return BackendError(
                f"{cfg.base_url}: HTTP {exc.status} ({exc.detail[:200]}); check base_url, model and "
                f"the API key variable {cfg.api_key_env}"
            )
        return BackendError(f"{cfg.base_url}: HTTP {exc.status}: {exc.detail[:200]}")

    def _retry_delay(self, exc: _Retryable, attempt: int) -> float:
        """Seconds to wait before retry ``attempt + 1``: exponential backoff with full
        jitter (spreads retries of concurrent workers), at least the server's
        ``Retry-After``; :class:`BackendUnavailable` once the retries are spent."""
        cfg = self.config
        if attempt >= cfg.max_retries:
            raise BackendUnavailable(
                f"{cfg.base_url}: {exc} (gave up after {attempt + 1} attempts)"
            ) from None
        delay = min(cfg.backoff_max_s, cfg.backoff_base_s * (2**attempt))
        delay = random.uniform(0, delay)
        if exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, cfg.backoff_max_s))
        with self._lock:
            self.retries += 1
        log.info(
            "retrying after %s (attempt %d/%d, sleeping %.2fs)",
            exc,
            attempt + 1,
            cfg.max_retries,
            delay,
        )
        return delay

    def complete_batch(
        self,
        batch: list[list[Message]],
        *,
        max_tokens: int,
        json_mode: bool = True,
        keys: Sequence[str] | None = None,
        spans_from: Sequence[str | None] | None = None,
        choices: Mapping[str, Sequence[str]] | None = None,
    ) -> list[Completion | BackendError]:
        def one(messages: list[Message]) -> Completion | BackendError:
            try:
                return self.complete(
                    messages, max_tokens=max_tokens, json_mode=json_mode, keys=keys, choices=choices
                )
            except BackendError as exc:
                return exc

        return list(self._pool.map(one, batch))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def json_schema_format(
    keys: list[str], choices: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """``response_format`` asking for ``{key: [string, ...], ...}`` with closed keys as enums."""
    props: dict[str, Any] = {}
    for key in keys:
        item: dict[str, Any] = {"type": "string"}
        if choices and key in choices:
            item["enum"] = list(choices[key])
        props[key] = {"type": "array", "items": item}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "facts",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": props,
                "required": list(keys),
                "additionalProperties": False,
            },
        },
    }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hands every 3xx back as an HTTPError: :meth:`OpenAIBackend._post` decides what to follow."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


def _origin(url: str) -> str:
    """``scheme://host:port`` with the default port made explicit (the unit credentials are bound to)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        return "invalid:" + url[:100]
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def _safe_url(url: str) -> str:
    """A URL for messages: no user info, query or fragment (they may carry secrets)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "<invalid URL>"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))[:200]


def _read_bounded(response: http.client.HTTPResponse, deadline: float, base_url: str) -> bytes:
    """The reply body, read in chunks against the request deadline and the size cap."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise _Retryable("timed out while reading the reply")
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise BackendError(f"{base_url}: reply larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)


def _read_detail(exc: urllib.error.HTTPError) -> str:
    """The start of an error body, on one line (bounded read: the body may be huge)."""
    try:
        raw = exc.read(2000)
    except (OSError, http.client.HTTPException, ValueError, AttributeError):
        raw = b""
    finally:
        _close(exc)
    return " ".join(raw.decode("utf-8", "replace").split())[:500]


def _close(exc: urllib.error.HTTPError) -> None:
    try:
        exc.close()
    except (OSError, AttributeError, ValueError):
        pass


class _HTTPFailure(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.detail = detail


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _completion_from(data: Any) -> Completion:
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
        text = (
            (message.get("content") if isinstance(message, dict) else None)
            or choice.get("text")
            or ""
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _Retryable("reply has no choices[0].message.content") from None
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    finish = choice.get("finish_reason")
    return Completion(
        text=text if isinstance(text, str) else str(text),
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        finish_reason=finish if isinstance(finish, str) else None,
    )


def _count(value: Any) -> int:
    """A token count from the server, 0 when it is missing or not a sane number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 0
    return max(0, min(int(value), 2**53)) if abs(value) != float("inf") else 0
