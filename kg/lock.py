"""One writer per output folder: an advisory lock with the holder's pid and a stale-lock rule.

``kg build --out``, augmentation work folders and training run directories are each
written by one process at a time.  Two writers would both journal every item, spend
every LLM call twice and interleave logs, so the second is refused with an error
naming the holder (pid, host, command).  The lock is a ``flock`` taken through
``filelock`` on ``<folder>/.lock``; the kernel releases it when the holder dies, even
by ``kill -9``.  The holder's identity is written beside it (``.lock.owner``) after the
lock is taken.  Stale-lock rule: when the lock is still held but the recorded holder
(on this host) is no longer alive — a child it forked kept the descriptor — the lock
file is replaced and taken over, with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from kg.errors import KGError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
OWNER_NAME = ".lock.owner"


class FolderLocked(KGError, RuntimeError):
    """Another live process holds the folder's lock."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:  # a zombie (killed, not yet reaped) holds no lock any more
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def read_owner(folder: str | os.PathLike) -> dict:
    """The recorded holder of ``folder``'s lock (``{}`` when none or unreadable)."""
    try:
        owner = json.loads((Path(folder) / OWNER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _describe(owner: dict) -> str:
    if not owner:
        return "another process (holder unknown)"
    command = " ".join(str(owner.get("command", "")).split())[:200]
    return f"pid {owner.get('pid')} on {owner.get('host')} (since {owner.get('since')}: {command})"


def _stale(owner: dict) -> bool:
    pid = owner.get("pid")
    return isinstance(pid, int) and owner.get("host") == socket.gethostname() and not pid_alive(pid)


def _write_owner(folder: Path) -> None:
    owner = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv)[:500],
    }
    tmp = folder / f"{OWNER_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(owner) + "\n", encoding="utf-8")
    os.replace(tmp, folder / OWNER_NAME)


@contextlib.contextmanager
def folder_lock(
    folder: str | os.PathLike, what: str = "folder", error: type[Exception] = FolderLocked
) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the ``with`` block, or raise ``error`` at once.

    The folder is created when missing.  ``what`` names it in the error (``kg build
    output``, ``training run`` ...); ``error`` lets callers raise their own error type.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        owner = read_owner(folder)
        if _stale(owner):  # a new holder may not have recorded itself yet: look again
            time.sleep(0.2)
            if read_owner(folder) != owner:
                owner = read_owner(folder)
        if not _stale(owner):
            raise error(
                f"{folder}: this {what} is in use by {_describe(owner)}; wait for it to finish "
                "or use another folder (two writers would duplicate work and mix outputs)"
            ) from None
        log.warning(
            "%s: taking over the lock of pid %s, which is no longer alive", folder, owner.get("pid")
        )
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / LOCK_NAME)  # an orphan still holds the old file; ours is new
        lock = FileLock(str(folder / LOCK_NAME), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise error(
                f"{folder}: this {what} is in use by {_describe(read_owner(folder))}"
            ) from None
    try:
        _write_owner(folder)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / OWNER_NAME)
        lock.release()
