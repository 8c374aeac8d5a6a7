"""One writer per folder, and a response cache that several processes open at once."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kg.llm.backends.base import Completion
from kg.llm.cache import ResponseCache
from kg.lock import OWNER_NAME, FolderLocked, folder_lock, read_owner

REPO = Path(__file__).resolve().parents[2]


def _open_and_write(path: str, index: int, start: float, queue) -> None:
    while time.time() < start:  # every process opens at the same instant
        pass
    try:
        cache = ResponseCache(path)
        cache.put(f"{index:064d}", Completion(text=f"reply {index}"))
        assert cache.get(f"{index:064d}").text == f"reply {index}"
        cache.close()
        queue.put(None)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(f"{type(exc).__name__}: {exc}")


def test_processes_open_the_cache_concurrently(tmp_path):
    # before the retry, 2 processes opening a new cache failed with "database is locked"
    # (at PRAGMA journal_mode=WAL) in about 1 trial in 10
    ctx = mp.get_context("fork")
    failures = []
    for trial in range(30):
        queue = ctx.Queue()
        path = str(tmp_path / f"cache{trial}.sqlite")
        n = 2 if trial % 3 else 4
        start = time.time() + 0.2
        procs = [
            ctx.Process(target=_open_and_write, args=(path, i, start, queue)) for i in range(n)
        ]
        for proc in procs:
            proc.start()
        failures += [r for r in (queue.get(timeout=120) for _ in procs) if r is not None]
        for proc in procs:
            proc.join(30)
        cache = ResponseCache(path)
        assert len(cache) == n
        cache.close()
    assert failures == []


_HOLDER = textwrap.dedent("""
    import sys, time
    from kg.lock import folder_lock
    with folder_lock(sys.argv[1], "test folder"):
        print("held", flush=True)
        time.sleep(60)
""")


def _hold(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_is_refused_with_the_holders_pid(tmp_path):
    holder = _hold(tmp_path / "out")
    try:
        with pytest.raises(FolderLocked, match=rf"in use by pid {holder.pid} "):
            with folder_lock(tmp_path / "out", "test folder"):
                pass
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock: the folder is free again
    with folder_lock(tmp_path / "out"):
        assert read_owner(tmp_path / "out")["pid"] == os.getpid()
    assert not (tmp_path / "out" / OWNER_NAME).exists()


def test_stale_lock_of_a_dead_pid_is_taken_over(tmp_path):
    # a holder that forked a child keeping the descriptor, then died: the lock stays held
    script = textwrap.dedent("""
        import os, sys, time
        from kg.lock import folder_lock
        with folder_lock(sys.argv[1]):
            child = os.fork()
            if child == 0:
                os.close(1); os.close(2); time.sleep(30); os._exit(0)
            print("held", child, flush=True)
            os._exit(0)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    said, child = proc.stdout.split()
    assert said == "held"
    try:
        dead = read_owner(tmp_path / "out")["pid"]
        with folder_lock(tmp_path / "out"):
            assert read_owner(tmp_path / "out")["pid"] == os.getpid() != dead
    finally:
        os.kill(int(child), 9)
