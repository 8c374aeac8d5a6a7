#!/usr/bin/env python
"""Load test of ``python -m graphrec serve``: latency percentiles and throughput under concurrency.

    python benchmarks/serve_load.py                                # LightGCN on ml-latest-small-tmdb
    python benchmarks/serve_load.py --config configs/ml-latest-small-tmdb/ease.yaml
    python benchmarks/serve_load.py --run runs/my-run --concurrency 32 --seconds 30

Without ``--run`` the model of ``--config`` is trained first (``--epochs``, default 5;
reused from ``benchmarks/results/tmp/serve_<config>`` when already there).  The server
is the real command (``python -m graphrec serve RUN``, uvicorn, one process) on
127.0.0.1; the client is a bounded local one on the same machine: ``--concurrency``
requests in flight at most (asyncio, one keep-alive connection each, a minimal HTTP/1.1
writer/reader so that the client costs less CPU than the server it shares the cores with), sent at
``--rate`` requests per second for ``--seconds`` (latency from each request's scheduled send time, so
client-side queueing counts), or with ``--rate 0`` back to back by ``--concurrency`` workers (maximum
throughput).  Requests are ``POST /recommend`` for random known users (k = 20) and, with
``--new-user-share``, ``POST /recommend/new-user`` with 10 random items.
Reported: requests per second, p50/p90/p99/max latency, errors (any non-200 or transport
error), and the server process's CPU time per request.  Written to ``benchmarks/results/serve_load_<run name>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import httpx  # noqa: E402
import numpy as np  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_run(config: Path, epochs: int) -> Path:
    out = RESULTS / "tmp"
    name = f"serve_{config.stem}"
    run = out / name
    if not (run / "serving" / "manifest.json").is_file() or not (run / "results.json").is_file():
        subprocess.run(
            [
                sys.executable,
                str(REPO / "train.py"),
                "-c",
                str(config),
                "--set",
                f"train.epochs={epochs}",
                "--set",
                "train.num_threads=2",
                "--out-dir",
                str(out),
                "--name",
                name,
                "-q",
            ],
            check=True,
        )
    return run


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux ``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(base: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(base + "/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def next_request(rng: random.Random, users: list[str], items: list[str], args) -> tuple[str, dict]:
    if rng.random() < args.new_user_share:
        return "/recommend/new-user", {"items": rng.sample(items, 10), "k": args.k}
    return "/recommend", {"user": rng.choice(users), "k": args.k}


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol for JSON POSTs.

    The load generator shares the 2 cores with the server, so it must cost far less per
    request than the server does; a general client (httpx) costs several times more."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode()
        self.writer.write(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (path.encode(), self.host.encode(), len(payload))
            + payload
        )
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        await self.reader.readexactly(int(length.group(1)) if length else 0)
        return int(head[9:12])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def load(
    host: str, port: int, users: list[str], items: list[str], args
) -> tuple[list[float], int, float]:
    """Open loop at ``args.rate`` requests/s (latency counted from each request's scheduled time,
    so queueing in the client counts), at most ``args.concurrency`` in flight (one connection
    each); ``rate`` 0: closed loop, ``concurrency`` workers sending back to back."""
    latencies: list[float] = []
    errors = 0
    rng = random.Random(0)
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(args.concurrency):
        pool.put_nowait(Connection(host, port))

    async def one(scheduled: float) -> None:
        nonlocal errors
        path, body = next_request(rng, users, items, args)
        connection = await pool.get()
        try:
            ok = await connection.post(path, body) == 200
        except (OSError, asyncio.IncompleteReadError, ValueError):
            connection.close()
            ok = False
        pool.put_nowait(connection)
        latencies.append(time.perf_counter() - scheduled)
        errors += not ok

    async def worker(stop: float) -> None:
        while time.perf_counter() < stop:
            await one(time.perf_counter())

    started = time.perf_counter()
    if args.rate > 0:
        tasks = []
        for i in range(int(args.rate * args.seconds)):
            scheduled = started + i / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
    else:
        await asyncio.gather(*(worker(started + args.seconds) for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait().close()
    return latencies, errors, elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a finished run directory (default: train --config)")
    parser.add_argument(
        "--config", default=str(REPO / "configs" / "ml-latest-small-tmdb" / "lightgcn.yaml")
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32, help="most requests in flight")
    parser.add_argument(
        "--rate",
        type=float,
        default=200,
        help="requests per second (open loop); 0 = closed loop, as fast as answered",
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--new-user-share", type=float, default=0.0)
    args = parser.parse_args(argv)
    run = Path(args.run) if args.run else ensure_run(Path(args.config), args.epochs)
    with np.load(run / "serving" / "ids.npz", allow_pickle=False) as ids:
        users, items = ids["user_ids"].tolist(), ids["item_ids"].tolist()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "graphrec", "serve", str(run), "--port", str(port), "-q"], env=env
    )
    try:
        wait_ready(base, server)
        for user in users[:50]:  # warm-up (embeddings, first allocations)
            httpx.post(base + "/recommend", json={"user": user, "k": args.k})
        cpu_before = cpu_seconds(server.pid)
        latencies, errors, elapsed = asyncio.run(load("127.0.0.1", port, users, items, args))
        server_cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(30)
    ms = np.asarray(latencies) * 1000
    result = {
        "benchmark": "serve_load",
        "run": str(run),
        "model": json.loads((run / "serving" / "manifest.json").read_text())["dataset"],
        "concurrency": args.concurrency,
        "rate": args.rate or "closed loop",
        "seconds": elapsed,
        "requests": len(ms),
        "errors": errors,
        "requests_per_second": len(ms) / elapsed,
        "latency_ms": {
            "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
        },
        "server_cpu_ms_per_request": 1000 * server_cpu / max(1, len(ms)),
        "k": args.k,
        "new_user_share": args.new_user_share,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg": os.getloadavg(),
        },
        "command": " ".join(
            ["python", "benchmarks/serve_load.py", *(argv if argv is not None else sys.argv[1:])]
        ),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (
        RESULTS
        / f"serve_load_{run.name}_{'closed' if not args.rate else f'rate{args.rate:g}'}.json"
    ).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
