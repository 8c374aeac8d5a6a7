"""The OpenAI-compatible backend against a chat-completions server started by the test."""

from __future__ import annotations

import logging

import pytest

from kg.errors import BackendError, BackendUnavailable
from kg.llm.backends.openai import OpenAIBackend, OpenAIConfig

MESSAGES = [{"role": "user", "content": "<text>\nA comedy about love.\n</text>"}]


def backend(server, **kw):
    cfg = OpenAIConfig(
        base_url=server.base_url,
        model="test-model",
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        timeout_s=kw.pop("timeout_s", 5.0),
        **kw,
    )
    return OpenAIBackend(cfg)


def test_completion_with_usage_and_json_mode(chat_server, monkeypatch):
    monkeypatch.setenv("KG_TEST_KEY", "sk-secret-123")
    b = backend(chat_server, api_key_env="KG_TEST_KEY")
    result = b.complete(MESSAGES, max_tokens=50)
    assert '"keyword": ["love"' in result.text and '"genre": ["Comedy"]' in result.text
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    request = chat_server.requests[-1]
    assert request["body"]["response_format"] == {"type": "json_object"}
    assert request["body"]["temperature"] == 0.0 and request["body"]["model"] == "test-model"
    assert request["headers"]["Authorization"] == "Bearer sk-secret-123"
    assert "sk-secret" not in str(b.identity())


def test_retries_429_500_drop_garbage_then_succeeds(chat_server, caplog):
    chat_server.plan = ["429", "500", "drop", "garbage", "503"]
    b = backend(chat_server, max_retries=6)
    with caplog.at_level(logging.INFO):
        result = b.complete(MESSAGES, max_tokens=50)
    assert "love" in result.text
    assert b.retries == 5
    assert len(chat_server.requests) == 6
    assert "sk-" not in caplog.text


def test_slow_reply_times_out_and_is_retried(chat_server):
    chat_server.plan = ["slow:2"]
    b = backend(chat_server, timeout_s=0.5, max_retries=2)
    assert "love" in b.complete(MESSAGES, max_tokens=50).text
    assert b.retries == 1


def test_server_down_gives_up_with_backend_unavailable(chat_server):
    chat_server.down = True
    b = backend(chat_server, max_retries=3)
    with pytest.raises(BackendUnavailable, match="gave up after 4 attempts"):
        b.complete(MESSAGES, max_tokens=50)
    assert len(chat_server.requests) == 4


def test_connection_refused_is_unavailable():
    b = OpenAIBackend(
        OpenAIConfig(
            base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_base_s=0.01, timeout_s=1.0
        )
    )
    with pytest.raises(BackendUnavailable):
        b.complete(MESSAGES, max_tokens=5)


def test_unauthorised_is_fatal_without_retries(chat_server):
    chat_server.plan = ["401"]
    b = backend(chat_server)
    with pytest.raises(BackendError, match="HTTP 401") as err:
        b.complete(MESSAGES, max_tokens=5)
    assert not isinstance(err.value, BackendUnavailable)
    assert len(chat_server.requests) == 1


def test_falls_back_when_json_mode_is_unsupported(chat_server):
    chat_server.reject_response_format = True
    b = backend(chat_server)
    assert "love" in b.complete(MESSAGES, max_tokens=50).text
    assert "love" in b.complete(MESSAGES, max_tokens=50).text
    bodies = [r["body"] for r in chat_server.requests]
    assert "response_format" in bodies[0] and all("response_format" not in x for x in bodies[1:])
    assert len(bodies) == 3  # the fallback is remembered


def test_batch_concurrency_is_bounded_and_failures_stay_in_their_slot(chat_server):
    chat_server.delay = 0.1
    b = backend(chat_server, concurrency=3, max_retries=0)
    chat_server.plan = ["ok", "401"]
    results = b.complete_batch([MESSAGES] * 9, max_tokens=20)
    assert len(results) == 9
    assert sum(isinstance(r, BackendError) for r in results) == 1
    assert 1 < chat_server.peak_in_flight <= 3
    b.close()


def test_json_schema_output_with_enums_then_fallbacks(chat_server):
    keys = ["keyword", "genre"]
    choices = {"genre": ["Comedy", "Drama"]}
    b = backend(chat_server)
    assert "love" in b.complete(MESSAGES, max_tokens=50, keys=keys, choices=choices).text
    fmt = chat_server.requests[-1]["body"]["response_format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert schema["required"] == keys and schema["additionalProperties"] is False
    assert schema["properties"]["genre"]["items"]["enum"] == ["Comedy", "Drama"]
    assert "enum" not in schema["properties"]["keyword"]["items"]
    # a server without json_schema: json_object next, remembered; without any format: plain
    chat_server.reject_json_schema = True
    chat_server.requests.clear()
    assert "love" in b.complete(MESSAGES, max_tokens=50, keys=keys).text
    assert "love" in b.complete(MESSAGES, max_tokens=50, keys=keys).text
    types = [(r["body"].get("response_format") or {}).get("type") for r in chat_server.requests]
    assert types == ["json_schema", "json_object", "json_object"]
    chat_server.reject_response_format = True
    chat_server.requests.clear()
    assert "love" in b.complete(MESSAGES, max_tokens=50, keys=keys).text
    types = [(r["body"].get("response_format") or {}).get("type") for r in chat_server.requests]
    assert types == ["json_object", None]


def test_schema_mode_does_not_fall_back(chat_server):
    chat_server.reject_json_schema = True
    b = backend(chat_server, json_mode="schema")
    with pytest.raises(BackendError, match="HTTP 400"):
        b.complete(MESSAGES, max_tokens=50, keys=["keyword"])
    assert len(chat_server.requests) == 1
