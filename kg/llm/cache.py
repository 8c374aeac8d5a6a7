"""On-disk cache of raw model responses (SQLite).

Keyed by a SHA-256 over (backend identity: kind, model, decoding parameters;
prompt version; schema fingerprint; the exact messages).  Only responses that
parsed are stored, so a failed or unparseable call is retried next time instead of
being replayed as a success.  Safe for several processes (the documented shard
builds share one cache): WAL, a busy timeout, and a bounded retry of statements that
SQLite refuses with "database is locked" without waiting (switching to WAL and
recovery return SQLITE_BUSY without calling the busy handler).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from kg.errors import DataFormatError
from kg.io import atomic_write_bytes
from kg.llm.backends.base import Completion, Message

#: seconds SQLite waits on a lock before a statement fails (then retried up to BUSY_RETRY_S)
BUSY_TIMEOUT_S = 30.0
BUSY_RETRY_S = 60.0


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _retry(action, *args):  # noqa: ANN001, ANN202 - a thin wrapper around sqlite calls
    """``action(*args)``, retried with back-off while SQLite reports the database busy."""
    deadline = time.monotonic() + BUSY_RETRY_S
    delay = 0.01
    while True:
        try:
            return action(*args)
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(0.5, delay * 2)


def cache_key(
    identity: dict[str, Any], prompt_version: str, schema_fingerprint: str, messages: list[Message]
) -> str:
    """Stable hash of everything that determines a response."""
    blob = json.dumps(
        {
            "id": identity,
            "prompt": prompt_version,
            "schema": schema_fingerprint,
            "messages": messages,
        },
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
        self._db = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
        self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        _retry(self._db.execute, "PRAGMA journal_mode=WAL")
        _retry(self._db.execute, "PRAGMA synchronous=NORMAL")
        _retry(
            self._db.execute,
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
            "prompt_tokens INTEGER, completion_tokens INTEGER, finish_reason TEXT, model TEXT, created REAL)",
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = _retry(
                lambda: self._db.execute(
                    "SELECT text, prompt_tokens, completion_tokens, finish_reason FROM responses WHERE key = ?",
                    (key,),
                ).fetchone()
            )
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return Completion(
            text=row[0],
            prompt_tokens=row[1] or 0,
            completion_tokens=row[2] or 0,
            finish_reason=row[3],
        )

    def put(self, key: str, completion: Completion, model: str = "") -> None:
        with self._lock:
            _retry(
                self._db.execute,
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    completion.text,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    completion.finish_reason,
                    model,
                    time.time(),
                ),
            )

    def export_jsonl(self, path: str | Path) -> int:
        """Write every response as one gzipped JSON line (key, text, token counts, model)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, text, prompt_tokens, completion_tokens, finish_reason, model FROM responses ORDER BY key"
            ).fetchall()
        lines = [
            json.dumps(
                {
                    "key": r[0],
                    "text": r[1],
                    "prompt_tokens": r[2],
                    "completion_tokens": r[3],
                    "finish_reason": r[4],
                    "model": r[5],
                },
                ensure_ascii=False,
            )
            for r in rows
        ]
        atomic_write_bytes(
            path, gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=9, mtime=0)
        )
        return len(rows)

    def import_jsonl(self, path: str | Path) -> int:
        """Seed the cache from :meth:`export_jsonl` output; existing keys are kept. Returns rows added."""
        path = Path(path)
        try:
            raw = gzip.decompress(path.read_bytes()).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataFormatError(
                f"not a gzipped JSON-lines cache export ({exc})", path=path
            ) from None
        rows = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key, text = rec["key"], rec["text"]
                if not (isinstance(key, str) and len(key) == 64 and isinstance(text, str)):
                    raise ValueError("key must be a 64-hex string and text a string")
            except (ValueError, KeyError, TypeError) as exc:
                raise DataFormatError(f"bad cache record ({exc})", path=path, line=number) from None
            rows.append(
                (
                    key,
                    text,
                    int(rec.get("prompt_tokens") or 0),
                    int(rec.get("completion_tokens") or 0),
                    rec.get("finish_reason"),
                    str(rec.get("model") or ""),
                    time.time(),
                )
            )
        with self._lock:
            before = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
            self._db.execute("COMMIT")
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] - before)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
