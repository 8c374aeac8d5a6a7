"""Sharded builds: split the items over processes or machines, then merge the outputs.

``kg build ... --shard i/n`` keeps the items whose stable hash (crc32 of the item id)
modulo ``n`` is ``i`` (0-based), so every shard sees a deterministic, disjoint 1/n of
the selection on any machine; each shard has its own output folder, journal and
cache and is resumable on its own.  ``kg merge SHARD_DIRS... --out DIR`` combines the
shards' journals (settings must agree; an item finished in two shards is kept once),
their response caches (so the merged folder rebuilds with zero calls) and run
counters, then assembles the graph once over all items: entity resolution runs
across shards and every item keeps its own named graph.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from kg.build import OutputConfig, finalize
from kg.data import Item
from kg.errors import ConfigError, JournalError
from kg.io import atomic_write_json
from kg.llm.cache import ResponseCache
from kg.llm.journal import FINAL_STATUSES, read_journal
from kg.pipeline import MODES, journal_name
from kg.resolve import ResolveConfig
from kg.schema import Schema


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with ``0 <= i < n``."""
    try:
        left, right = spec.split("/")
        index, count = int(left), int(right)
    except ValueError:
        raise ConfigError(f"--shard must look like i/n (e.g. 0/4), got {spec!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(
            f"--shard {spec}: need n >= 1 and 0 <= i < n (shards are numbered from 0)"
        )
    return index, count


def shard_of(item_id: str, count: int) -> int:
    """Stable shard of an item: the same on every machine, Python version and run."""
    return zlib.crc32(str(item_id).encode("utf-8")) % count


def in_shard(item_id: str, index: int, count: int) -> bool:
    return count == 1 or shard_of(item_id, count) == index


def _merge_caches(sources: list[Path], target: Path) -> int:
    """Copy every response of the shard caches into ``target`` (existing keys kept)."""
    ResponseCache(target).close()  # creates the table with the current layout
    db = sqlite3.connect(str(target), timeout=30.0, isolation_level=None)
    added = 0
    try:
        for src in sources:
            if not src.exists() or src.resolve() == target.resolve():
                continue
            before = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            db.execute("ATTACH DATABASE ? AS shard", (str(src),))
            db.execute("INSERT OR IGNORE INTO responses SELECT * FROM shard.responses")
            db.execute("DETACH DATABASE shard")
            added += db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] - before
    finally:
        db.close()
    return added


def merge_journals(shard_dirs: list[Path], out: Path) -> dict[str, Any]:
    """Write ``out/journal.<mode>.jsonl`` from the shards' journals; returns counts."""
    report: dict[str, Any] = {}
    for mode in MODES:
        present = [d for d in shard_dirs if (d / journal_name(mode)).exists()]
        if not present:
            continue
        fingerprint = None
        merged: dict[str, dict[str, Any]] = {}
        duplicates = 0
        per_shard: dict[str, int] = {}
        for d in present:
            fp, records = read_journal(d / journal_name(mode))
            if fingerprint is None:
                fingerprint, first = fp, d
            elif fp != fingerprint:
                raise JournalError(
                    f"{d}: {mode} journal was built with other settings than {first}; "
                    "only shards of one build can be merged"
                )
            per_shard[str(d)] = len(records)
            for rec in records:
                old = merged.get(rec["item_id"])
                if old is None:
                    merged[rec["item_id"]] = rec
                    continue
                duplicates += 1
                # a finished record beats a failed one; between finished ones the first stays
                if old.get("status") not in FINAL_STATUSES and rec.get("status") in FINAL_STATUSES:
                    merged[rec["item_id"]] = rec
        target = out / journal_name(mode)
        tmp = target.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(
                json.dumps({"kind": "header", "fingerprint": fingerprint}, ensure_ascii=False)
                + "\n"
            )
            for item_id in sorted(merged, key=_natural):
                handle.write(json.dumps(merged[item_id], ensure_ascii=False) + "\n")
        tmp.replace(target)
        report[mode] = {
            "items": len(merged),
            "duplicates_dropped": duplicates,
            "statuses": dict(Counter(r["status"] for r in merged.values())),
            "per_shard": per_shard,
        }
    if not report:
        raise ConfigError(
            "none of the shard folders holds a kg journal: " + ", ".join(map(str, shard_dirs))
        )
    return report


def _natural(item_id: str) -> tuple[int, int | str]:
    return (0, int(item_id)) if item_id.isdigit() else (1, item_id)


def merge_builds(
    shard_dirs: list[str | Path],
    out: str | Path,
    schema: Schema,
    items: list[Item] | None = None,
    resolve_cfg: ResolveConfig | None = None,
    output: OutputConfig | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Merge shard folders into ``out`` and assemble the graph there (see module doc)."""
    dirs = [Path(d) for d in shard_dirs]
    out = Path(out)
    for d in dirs:
        if not d.is_dir():
            raise ConfigError(f"{d}: not a folder")
        if d.resolve() == out.resolve():
            raise ConfigError(f"{d}: the merge output must be a new folder, not one of the shards")
    out.mkdir(parents=True, exist_ok=True)
    report = merge_journals(dirs, out)
    report["cache_responses_added"] = _merge_caches(
        [d / "cache.sqlite" for d in dirs], out / "cache.sqlite"
    )
    runs = out / "runs"
    for d in dirs:
        for run in sorted((d / "runs").glob("*.json")) if (d / "runs").is_dir() else []:
            runs.mkdir(exist_ok=True)
            shutil.copy2(run, runs / run.name)
    stats = finalize(out, schema, items, resolve_cfg=resolve_cfg, output=output, quiet=quiet)
    report["graph"] = {k: stats["graph"].get(k) for k in ("nodes", "edges", "weak_components")}
    report["entities"] = stats["entities"]
    report["shards"] = [str(d) for d in dirs]
    atomic_write_json(out / "merge.json", report)
    return report
