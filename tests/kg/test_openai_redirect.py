"""The API key never follows a redirect to another origin; refused credentials end a build non-zero.

Two local servers on two ports: the first answers every request with a redirect to the
second, which records every request it gets (any method).  The key must never reach
the second one; a redirect within one origin (307/308) is still followed, a bounded
number of times.
"""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

import pytest
from chat_server import JSONHandler
from fakes import fake_reply
from helpers import write_items

from kg.cli import main
from kg.errors import BackendError
from kg.llm.backends.openai import MAX_REDIRECTS, OpenAIBackend, OpenAIConfig, RedirectRefused

KEY = "sk-redirect-secret-42"
MESSAGES = [{"role": "user", "content": "<text>\nA comedy about love.\n</text>"}]


class RecordingServer:
    """Records every request; ``redirects`` maps a path to (status, Location); serves
    ``/v1/chat/completions`` with the fake model's reply."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.redirects: dict[str, tuple[int, str]] = {}
        self.raw_reply: bytes | None = None  # a scripted body instead of the fake model's reply
        server = self

        class Handler(JSONHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": raw,
                    }
                )
                if self.path in server.redirects:
                    status, location = server.redirects[self.path]
                    return self._send(status, b"", {"Location": location})
                if self.path == "/v1/chat/completions" and self.command == "POST":
                    if server.raw_reply is not None:
                        return self._send(200, server.raw_reply)
                    body = json.loads(raw)
                    content = fake_reply(body["messages"])
                    reply = {
                        "choices": [
                            {
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                    }
                    return self._send(200, json.dumps(reply).encode())
                return self._send(404, b'{"error": "not found"}')

            do_POST = do_GET = do_PUT = do_HEAD = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    with RecordingServer() as first, RecordingServer() as second:
        yield first, second


def backend(base_url: str, **kw) -> OpenAIBackend:
    return OpenAIBackend(
        OpenAIConfig(
            base_url=base_url,
            model="m",
            api_key_env="KG_REDIRECT_KEY",
            max_retries=0,
            backoff_base_s=0.01,
            timeout_s=5.0,
            **kw,
        )
    )


@pytest.mark.parametrize("status", [307, 308, 301, 302, 303])
def test_cross_origin_redirect_is_refused_and_the_key_stays_home(servers, status, monkeypatch):
    first, second = servers
    monkeypatch.setenv("KG_REDIRECT_KEY", KEY)
    first.redirects["/v1/chat/completions"] = (status, second.origin + "/v1/chat/completions")
    with pytest.raises(RedirectRefused, match="another origin") as err:
        backend(first.origin + "/v1").complete(MESSAGES, max_tokens=20)
    assert isinstance(err.value, BackendError)
    assert second.origin.split("//")[1] in str(err.value) and KEY not in str(err.value)
    assert second.requests == []  # nothing at all reached the other server, so neither did the key
    assert (
        len(first.requests) == 1
        and first.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    )


def test_redirect_to_the_same_host_on_another_port_or_scheme_is_another_origin(
    servers, monkeypatch
):
    first, _ = servers
    monkeypatch.setenv("KG_REDIRECT_KEY", KEY)
    port = int(first.origin.rsplit(":", 1)[1])
    for target in (
        f"http://127.0.0.1:{port + 1}/v1/chat/completions",
        f"https://127.0.0.1:{port}/v1/chat/completions",
        f"http://localhost:{port}/v1/chat/completions",
    ):
        first.redirects["/v1/chat/completions"] = (307, target)
        with pytest.raises(RedirectRefused):
            backend(first.origin + "/v1").complete(MESSAGES, max_tokens=20)


@pytest.mark.parametrize("status", [307, 308])
def test_same_origin_redirect_is_followed_with_body_and_key(servers, status, monkeypatch):
    first, second = servers
    monkeypatch.setenv("KG_REDIRECT_KEY", KEY)
    first.redirects["/old/v1/chat/completions"] = (
        status,
        "/v1/chat/completions",
    )  # relative Location
    result = backend(first.origin + "/old/v1").complete(MESSAGES, max_tokens=20)
    assert "love" in result.text
    assert [(r["method"], r["path"]) for r in first.requests] == [
        ("POST", "/old/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    final = first.requests[-1]
    assert (
        final["headers"]["Authorization"] == f"Bearer {KEY}"
        and json.loads(final["body"])["model"] == "m"
    )
    assert second.requests == []


def test_same_origin_redirect_that_would_turn_post_into_get_is_refused(servers):
    first, _ = servers
    first.redirects["/old/v1/chat/completions"] = (301, first.origin + "/v1/chat/completions")
    with pytest.raises(RedirectRefused, match="POST into a GET"):
        backend(first.origin + "/old/v1").complete(MESSAGES, max_tokens=20)
    assert len(first.requests) == 1


def test_redirect_loop_is_bounded(servers):
    first, _ = servers
    first.redirects["/v1/chat/completions"] = (307, "/v1/chat/completions")
    with pytest.raises(RedirectRefused, match=f"more than {MAX_REDIRECTS} redirects"):
        backend(first.origin + "/v1").complete(MESSAGES, max_tokens=20)
    assert len(first.requests) == MAX_REDIRECTS + 1


def test_chat_server_fixture_never_sees_a_redirected_key(servers, chat_server, monkeypatch):
    """The shared fake OpenAI server as the other origin: it gets no request at all."""
    first, _ = servers
    monkeypatch.setenv("KG_REDIRECT_KEY", KEY)
    first.redirects["/v1/chat/completions"] = (307, chat_server.base_url + "/chat/completions")
    with pytest.raises(RedirectRefused):
        backend(first.origin + "/v1").complete(MESSAGES, max_tokens=20)
    assert chat_server.requests == []
    assert (
        "love" in backend(chat_server.base_url).complete(MESSAGES, max_tokens=20).text
    )  # direct use still works


def _reply(content: str, usage: str = '{"prompt_tokens": 3, "completion_tokens": 2}') -> bytes:
    return (
        f'{{"choices": [{{"message": {{"role": "assistant", "content": {json.dumps(content)}}}, '
        f'"finish_reason": "stop"}}], "usage": {usage}}}'
    ).encode()


def test_reply_bodies_are_decoded_within_bounds(servers):
    first, _ = servers
    long_number = "7" * 5000
    first.raw_reply = _reply(
        f'{{"keyword": [{long_number}]}}'
    )  # the model's text: kg.parse's business
    assert long_number in backend(first.origin + "/v1").complete(MESSAGES, max_tokens=20).text
    first.raw_reply = _reply(
        "{}", usage=f'{{"prompt_tokens": {long_number}}}'
    )  # the server's own JSON
    with pytest.raises(
        BackendError, match="not JSON"
    ):  # retried as a broken reply, never a ValueError
        backend(first.origin + "/v1").complete(MESSAGES, max_tokens=20)
    first.raw_reply = _reply("{}", usage="[" * 5000 + "]" * 5000)
    with pytest.raises(BackendError, match="not JSON"):
        backend(first.origin + "/v1").complete(MESSAGES, max_tokens=20)
    first.raw_reply = _reply("ok", usage='{"prompt_tokens": "many", "completion_tokens": [1]}')
    result = backend(first.origin + "/v1").complete(MESSAGES, max_tokens=20)
    assert result.text == "ok" and result.prompt_tokens == 0 and result.completion_tokens == 0


# -- kg build: refused credentials and all-failed runs end non-zero ------------------------------------
def _build(items, base_url, out, *extra):
    return main(
        [
            "build",
            "--items",
            str(items),
            "--backend",
            "openai",
            "--base-url",
            base_url,
            "--model",
            "m",
            "--out",
            str(out),
            "--no-embeddings",
            "--quiet",
            "--formats",
            "ttl",
            "--concurrency",
            "1",
            "--max-retries",
            "0",
            *extra,
        ]
    )


def test_build_with_401_on_every_call_exits_2_with_one_line(tmp_path, chat_server, capsys):
    chat_server.plan = ["401"] * 50
    items = write_items(tmp_path / "items.tsv")
    code = _build(items, chat_server.base_url, tmp_path / "run")
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kg: error:") and "HTTP 401" in lines[0]
    assert len(chat_server.requests) == 1  # the build stopped at the first refusal
    assert list((tmp_path / "run" / "runs").glob("*.json"))  # counters of the stopped run are kept


def test_build_where_every_call_fails_exits_2(tmp_path, chat_server, capsys):
    chat_server.reject_response_format = (
        True  # HTTP 400 to every call with --json-mode on (no fallback)
    )
    items = write_items(tmp_path / "items.tsv")
    code = _build(items, chat_server.base_url, tmp_path / "run", "--json-mode", "on")
    captured = capsys.readouterr()
    assert code == 2
    summary = json.loads(captured.out)
    assert (
        summary["items_failed"] == 5
        and summary["items_done"] == 0
        and "HTTP 400" in summary["first_error"]
    )
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "every item of this run failed (5 failed, none done)" in lines[0]


def test_build_with_some_items_failing_still_exits_0(tmp_path, chat_server, capsys):
    def responder(messages):
        if len(chat_server.requests) >= 2:
            chat_server.reject_response_format = True  # later calls get HTTP 400
        return fake_reply(messages)

    chat_server.responder = responder
    items = write_items(tmp_path / "items.tsv")
    code = _build(items, chat_server.base_url, tmp_path / "run", "--json-mode", "on")
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["items_done"] == 2 and summary["items_failed"] == 3
