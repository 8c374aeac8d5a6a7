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
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import BackendError, BackendUnavailable, ConfigError
from .base import Completion, LLMBackend, Message

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529}
_FATAL_STATUS = {401, 403, 404}


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
            raise ConfigError(f"openai.base_url must start with http:// or https://, got {self.base_url!r}")
        if self.json_mode not in ("auto", "schema", "on", "off"):
            raise ConfigError("openai.json_mode must be 'auto', 'schema', 'on' or 'off'")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout_s <= 0:
            raise ConfigError("openai.concurrency >= 1, max_retries >= 0 and timeout_s > 0 are required")


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
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="kg-openai")
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
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.config.api_key_env, "") if self.config.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            if exc.code in _RETRY_STATUS:
                retry_after = _parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                raise _Retryable(f"HTTP {exc.code}", retry_after) from None
            raise _HTTPFailure(exc.code, detail) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                http.client.HTTPException, OSError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
        try:
            return json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retryable("server sent a body that is not JSON") from None

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
        cfg = self.config
        attempt = 0
        while True:
            use_json = json_mode and self._json_supported
            body: dict[str, Any] = {
                "model": cfg.model,
                "messages": messages,
                "temperature": cfg.temperature,
                "max_tokens": max_tokens,
            }
            if cfg.seed is not None:
                body["seed"] = cfg.seed
            use_schema = use_json and bool(keys) and self._schema_supported
            if use_schema:
                body["response_format"] = json_schema_format(list(keys or []), choices)
            elif use_json:
                body["response_format"] = {"type": "json_object"}
            if cfg.extra_body:
                body.update(cfg.extra_body)
            try:
                data = self._post(body)
                return _completion_from(data)
            except _HTTPFailure as exc:
                rejected = exc.status in (400, 422) and any(
                    w in exc.detail for w in ("response_format", "json_schema", "json_object"))
                if use_schema and cfg.json_mode == "auto" and rejected:
                    with self._lock:
                        if self._schema_supported:
                            log.warning("server does not support json_schema output; using json_object")
                        self._schema_supported = False
                    continue
                if use_json and cfg.json_mode == "auto" and rejected:
                    with self._lock:
                        if self._json_supported:
                            log.warning("server does not support response_format; continuing without JSON mode")
                        self._json_supported = False
                    continue
                if exc.status in _FATAL_STATUS:
                    raise BackendError(
                        f"{cfg.base_url}: HTTP {exc.status} ({exc.detail[:200]}); check base_url, model and "
                        f"the API key variable {cfg.api_key_env}"
                    ) from None
                raise BackendError(f"{cfg.base_url}: HTTP {exc.status}: {exc.detail[:200]}") from None
            except _Retryable as exc:
                if attempt >= cfg.max_retries:
                    raise BackendUnavailable(
                        f"{cfg.base_url}: {exc} (gave up after {attempt + 1} attempts)"
                    ) from None
                delay = min(cfg.backoff_max_s, cfg.backoff_base_s * (2**attempt))
                delay = random.uniform(0, delay)  # full jitter: spreads retries of concurrent workers
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, cfg.backoff_max_s))
                attempt += 1
                with self._lock:
                    self.retries += 1
                log.info("retrying after %s (attempt %d/%d, sleeping %.2fs)", exc, attempt, cfg.max_retries, delay)
                self._sleep(delay)

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
                return self.complete(messages, max_tokens=max_tokens, json_mode=json_mode, keys=keys, choices=choices)
            except BackendError as exc:
                return exc

        return list(self._pool.map(one, batch))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def json_schema_format(keys: list[str], choices: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
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
            "schema": {"type": "object", "properties": props, "required": list(keys), "additionalProperties": False},
        },
    }


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


def _completion_from(data: dict[str, Any]) -> Completion:
    try:
        choice = data["choices"][0]
        text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _Retryable("reply has no choices[0].message.content") from None
    usage = data.get("usage") or {}
    return Completion(
        text=str(text),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
    )
