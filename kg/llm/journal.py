"""Per-item build journal: the record of which items are finished.

One JSON line per finished item (status ``done``, ``skipped`` or ``failed``),
appended and fsynced the moment the item is finished.  A build killed at any instant
loses at most the items it had not yet journaled (a torn last line is dropped on
read), and resuming skips exactly the journaled ``done``/``skipped`` items: no item
is lost and none is recorded twice (``failed`` items are retried).  The first line
is a header with the build fingerprint; resuming with a different schema, prompt,
model or mode is refused instead of silently mixing outputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kg.errors import JournalError
from kg.io import append_jsonl, read_jsonl

FINAL_STATUSES = ("done", "skipped")


class Journal:
    """Append-only item journal at ``path``."""

    def __init__(self, path: str | Path, fingerprint: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self.records: dict[str, dict[str, Any]] = {}
        existing = read_jsonl(self.path) if self.path.exists() else []
        if existing:
            header = existing[0]
            if header.get("kind") != "header":
                raise JournalError(f"{self.path}: not a kg journal (first line is not a header)")
            if header.get("fingerprint") != fingerprint:
                raise JournalError(
                    f"{self.path}: this output folder holds a build with different settings "
                    f"({_diff(header.get('fingerprint') or {}, fingerprint)}); use another --out or delete it"
                )
            for record in existing[1:]:
                if record.get("kind") == "item":
                    # a later record of the same item (a retried failure) replaces the earlier one
                    self.records[str(record["item_id"])] = record
        self._truncate_torn_tail()
        self._handle = open(self.path, "a", encoding="utf-8")
        if not existing:
            append_jsonl(self._handle, {"kind": "header", "fingerprint": fingerprint})

    def _truncate_torn_tail(self) -> None:
        # drop a half-written last line so the next append starts on a fresh line
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as handle:
                handle.truncate(cut)
                handle.flush()
                os.fsync(handle.fileno())

    def is_finished(self, item_id: str) -> bool:
        record = self.records.get(str(item_id))
        return record is not None and record.get("status") in FINAL_STATUSES

    def record(self, item_id: str, status: str, **fields: Any) -> None:
        entry = {"kind": "item", "item_id": str(item_id), "status": status, **fields}
        append_jsonl(self._handle, entry)
        self.records[str(item_id)] = entry

    def finished(self) -> Iterator[dict[str, Any]]:
        return (r for r in self.records.values() if r.get("status") in FINAL_STATUSES)

    def close(self) -> None:
        self._handle.close()


def read_journal(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Header fingerprint and the final item records of a journal (last record per item wins)."""
    records = read_jsonl(path)
    if not records or records[0].get("kind") != "header":
        raise JournalError(f"{path}: not a kg journal")
    items: dict[str, dict[str, Any]] = {}
    for record in records[1:]:
        if record.get("kind") == "item":
            items[str(record["item_id"])] = record
    return records[0]["fingerprint"], list(items.values())


def _diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys) or "unknown difference"
