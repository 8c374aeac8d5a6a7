"""On-disk cache of raw model responses (SQLite).

Keyed by a SHA-256 over (backend identity: kind, model, decoding parameters;
prompt version; schema fingerprint; the exact messages).  Only responses that
parsed are stored, so a failed or unparseable call is retried next time instead of
being replayed as a success.  Safe for several processes (WAL, busy timeout).
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .backends.base import Completion, Message


def cache_key(identity: dict[str, Any], prompt_version: str, schema_fingerprint: str, messages: list[Message]) -> str:
    """Stable hash of everything that determines a response."""
    blob = json.dumps(
        {"id": identity, "prompt": prompt_version, "schema": schema_fingerprint, "messages": messages},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A small key -> completion store with hit/miss counters."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
            "prompt_tokens INTEGER, completion_tokens INTEGER, finish_reason TEXT, model TEXT, created REAL)"
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason FROM responses WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return Completion(text=row[0], prompt_tokens=row[1] or 0, completion_tokens=row[2] or 0, finish_reason=row[3])

    def put(self, key: str, completion: Completion, model: str = "") -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, completion.text, completion.prompt_tokens, completion.completion_tokens,
                 completion.finish_reason, model, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
