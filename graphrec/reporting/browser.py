"""Open a page in headless Chromium and report what a person would see: errors, requests, a screenshot.

A small Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-separated JSON): no websocket library, no driver, no
browser download, only Debian's ``chromium`` package.  Used by the report's test
and by ``evaluate.py report --check``.

It collects ``Runtime.consoleAPICalled`` (console.error/warn),
``Runtime.exceptionThrown`` (uncaught exceptions), ``Log.entryAdded`` (browser
errors such as failed resource loads) and every network request, so a test can
assert that a self-contained page logs no error and fetches nothing but itself.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PageCheck", "check_page", "find_chromium"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH, or ``None``."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What loading a page produced."""

    url: str
    console: list[dict] = field(default_factory=list)  # {"level", "text"}
    exceptions: list[str] = field(default_factory=list)
    log_entries: list[dict] = field(default_factory=list)  # {"level", "source", "text", "url"}
    requests: list[str] = field(default_factory=list)
    title: str = ""
    text_length: int = 0
    images: int = 0
    images_broken: int = 0
    page_height: int = 0

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors, as text."""
        out = [
            f"console.{c['level']}: {c['text']}"
            for c in self.console
            if c["level"] in ("error", "assert")
        ]
        out += [f"exception: {e}" for e in self.exceptions]
        out += [
            f"log {e['source']}: {e['text']} {e.get('url', '')}".strip()
            for e in self.log_entries
            if e["level"] == "error"
        ]
        return out

    @property
    def external_requests(self) -> list[str]:
        """Requests for anything but the page itself and inline ``data:`` URLs."""
        return [u for u in self.requests if not (u == self.url or u.startswith("data:"))]


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode("utf-8") + b"\0")
        return self.next_id

    def wait(self, predicate, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                self.events.append(message)
                if predicate(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self.read_fd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self.buffer += chunk

    def call(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict:
        ident = self.send(method, params, session)
        reply = self.wait(lambda m: m.get("id") == ident, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})


def _start_chromium(
    binary: str, profile: str, width: int, height: int
) -> tuple[subprocess.Popen, _Pipe]:
    """Chromium with its DevTools protocol on a pipe (fd 3: commands in, fd 4: replies out)."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def child_fds() -> None:  # Chromium reads commands on fd 3 and writes replies on fd 4
        # Move both ends above 3/4 first (close-on-exec copies), so neither dup2 can clobber the
        # other; dup2 makes 3 and 4 inheritable, every other descriptor of ours is close-on-exec.
        high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.dup2(high_r, 3)
        os.dup2(high_w, 4)

    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--mute-audio",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--remote-debugging-pipe",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    # close_fds=False: closing would also close 3 and 4 after preexec_fn (pass_fds cannot name
    # them: they need not exist in this process); Python's own descriptors are close-on-exec.
    proc = subprocess.Popen(
        args,
        close_fds=False,
        preexec_fn=child_fds,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_browser_r)
    os.close(from_browser_w)
    return proc, _Pipe(to_browser_w, from_browser_r)


def _load_and_probe(
    pipe: _Pipe,
    result: PageCheck,
    width: int,
    height: int,
    timeout: float,
    settle: float,
    screenshot: str | Path | None,
) -> None:
    """Open ``result.url`` in a new tab, measure the page into ``result``, save the screenshot."""
    target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
    session = pipe.call(
        "Target.attachToTarget", {"targetId": target, "flatten": True}, timeout=timeout
    )["sessionId"]
    for method in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
        pipe.call(method, session=session, timeout=timeout)
    pipe.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        session,
        timeout,
    )
    pipe.call("Page.navigate", {"url": result.url}, session, timeout)
    pipe.wait(lambda m: m.get("method") == "Page.loadEventFired", timeout)
    time.sleep(settle)  # late console messages and image decoding
    probe = (
        "JSON.stringify({title: document.title, "
        "text: document.body ? document.body.innerText.length : 0, "
        "images: document.images.length, "
        "broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length, "
        "height: document.documentElement.scrollHeight})"
    )
    info = json.loads(
        pipe.call(
            "Runtime.evaluate", {"expression": probe, "returnByValue": True}, session, timeout
        )["result"]["value"]
    )
    result.title, result.text_length = info["title"], info["text"]
    result.images, result.images_broken, result.page_height = (
        info["images"],
        info["broken"],
        info["height"],
    )
    if screenshot is not None:
        clip = {"x": 0, "y": 0, "width": width, "height": min(info["height"], 16000), "scale": 1}
        data = pipe.call(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
            session,
            timeout,
        )["data"]
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        Path(screenshot).write_bytes(base64.b64decode(data))


def _collect_events(events: list[dict], result: PageCheck) -> None:
    """Console messages, exceptions, browser log entries and requests of the protocol's events."""
    for message in events:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
            )
            result.console.append({"level": params.get("type", ""), "text": text})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            result.exceptions.append(
                details.get("exception", {}).get("description") or details.get("text", "")
            )
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            result.log_entries.append(
                {k: entry.get(k, "") for k in ("level", "source", "text", "url")}
            )
        elif method == "Network.requestWillBeSent":
            result.requests.append(params.get("request", {}).get("url", ""))


def check_page(
    path_or_url: str | Path,
    screenshot: str | Path | None = None,
    width: int = 1280,
    height: int = 900,
    timeout: float = 60,
    settle: float = 0.5,
    chromium: str | None = None,
) -> PageCheck:
    """Load a page in headless Chromium; return its errors and requests, optionally save a full-page PNG."""
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium executable found (apt-get install chromium)")
    url = str(path_or_url)
    if "://" not in url and not url.startswith(("data:", "about:")):
        url = Path(url).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="graphrec-chromium-")
    proc, pipe = _start_chromium(binary, profile, width, height)
    result = PageCheck(url=url)
    try:
        _load_and_probe(pipe, result, width, height, timeout, settle, screenshot)
        pipe.send("Browser.close")
    finally:
        _collect_events(pipe.events, result)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(pipe.write_fd)
        os.close(pipe.read_fd)
        shutil.rmtree(profile, ignore_errors=True)
    return result
