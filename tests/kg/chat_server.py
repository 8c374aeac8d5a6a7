"""A local HTTP server speaking the OpenAI chat-completions protocol, for tests.

Behaviour per request comes from a plan (a list consumed in order; then ``ok``):
``ok``, ``429`` (with Retry-After), ``500``, ``503``, ``slow:SECONDS``, ``drop``
(close the connection without answering), ``garbage`` (non-JSON body), ``empty``
(an empty completion), ``401``.  ``down = True`` answers 503 to everything;
``reject_json_schema`` / ``reject_response_format`` answer 400 to those output formats.
Requests (body and headers) are recorded for assertions, with the peak number of
requests in flight.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler that answers with JSON bodies (the test servers' common part)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class ChatServer:
    def __init__(self, responder: Callable[[list[dict]], str], delay: float = 0.0) -> None:
        self.responder = responder
        self.delay = delay
        self.plan: list[str] = []
        self.down = False
        self.reject_response_format = False
        self.reject_json_schema = False
        self.requests: list[dict] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                self._counted = True
                with server._lock:
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                    action = server.plan.pop(0) if server.plan else "ok"
                    if server.down:
                        action = "503"
                try:
                    body = json.loads(raw)
                    server.requests.append(
                        {"body": body, "headers": dict(self.headers), "action": action}
                    )
                    if self.path != "/v1/chat/completions":
                        return self._send(404, b'{"error": "not found"}')
                    if server.delay:
                        time.sleep(server.delay)
                    if action.startswith("slow:"):
                        time.sleep(float(action.split(":")[1]))
                        action = "ok"
                    if action == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if action in ("429", "500", "503", "401"):
                        headers = {"Retry-After": "0"} if action == "429" else {}
                        return self._send(
                            int(action), b'{"error": {"message": "scripted"}}', headers
                        )
                    if action == "garbage":
                        return self._send(200, b"<html>oops</html>")
                    fmt = (body.get("response_format") or {}).get("type")
                    if server.reject_json_schema and fmt == "json_schema":
                        return self._send(
                            400, b'{"error": {"message": "json_schema is not supported"}}'
                        )
                    if server.reject_response_format and "response_format" in body:
                        return self._send(
                            400, b'{"error": {"message": "response_format is not supported"}}'
                        )
                    content = "" if action == "empty" else server.responder(body["messages"])
                    reply = {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": len(json.dumps(body["messages"]).split()),
                            "completion_tokens": len(content.split()),
                        },
                    }
                    return self._send(200, json.dumps(reply).encode())
                finally:
                    self._leave()

            def _leave(self) -> None:
                if getattr(self, "_counted", False):
                    self._counted = False
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, *args, **kwargs):
                # leave before the reply is written: once the client has it, it may send its next request
                # at once, and counting the finished one too would report one request too many in flight
                self._leave()
                return super()._send(*args, **kwargs)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ChatServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
