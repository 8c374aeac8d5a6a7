"""Top-K export for many users: streamed in blocks, resumable, atomic.

Output formats by suffix:

* ``.csv``: ``user,rank,item,score`` (plus ``explanation`` — JSON — with explanations), one row per item;
* ``.jsonl``: one ``{"user", "items", "scores"[, "explanations"]}`` object per user;
* ``.parquet``: the CSV's columns (needs ``pyarrow``; not resumable: restarts from the beginning).

Rows go to ``OUT.partial``; after every block the file is fsynced and
``OUT.progress.json`` records how many users and bytes are done.  A rerun of the
same export (same run, users, k and options) truncates the partial file to the
recorded size and continues; a different export starts over.  The finished file
is renamed to ``OUT`` in one step, so ``OUT`` is either absent or complete.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from graphrec.errors import DataFormatError, GraphrecError
from graphrec.inference.explain import explain_row
from graphrec.inference.recommender import TrainedRecommender
from graphrec.io import atomic_write_json
from graphrec.optional import require

FORMATS = (".csv", ".jsonl", ".parquet")


def read_user_file(path: str | Path) -> list[str]:
    """Raw user ids, one per line (blank lines and ``#`` comments skipped; a first line
    ``user`` or ``user_id`` is a header)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(f"cannot read the user list ({err})", path=path) from err
    users = [line.strip() for line in lines]
    if users and users[0] in ("user", "user_id"):
        users = users[1:]
    return [u for u in users if u and not u.startswith("#")]


def check_users(
    rec: TrainedRecommender, users: Sequence[str], path: str | Path | None, unknown: str
) -> None:
    """With ``unknown="error"``, a :class:`DataFormatError` naming the file and line of the first unknown user."""
    if unknown != "error":
        return
    for position, user in enumerate(users):
        if not rec.knows_user(user):
            if path is None:
                raise GraphrecError(f"unknown user id {user!r}")
            line = _line_of(Path(path), user) or position + 1
            raise DataFormatError(
                f"unknown user id {user!r} (not in the run's training data; "
                "--unknown popularity recommends popular items instead)",
                path=path,
                line=line,
                field="user",
            )


def _line_of(path: Path, user: str) -> int | None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() == user:
            return number
    return None


class _Progress:
    """``OUT.progress.json``: users and bytes already written for one export signature."""

    def __init__(self, out: Path, signature: str) -> None:
        self.path = out.with_name(out.name + ".progress.json")
        self.partial = out.with_name(out.name + ".partial")
        self.signature = signature

    def resume_point(self) -> tuple[int, int]:
        """``(users done, bytes)`` of a matching earlier attempt, else ``(0, 0)``."""
        if not (self.path.is_file() and self.partial.is_file()):
            return 0, 0
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError:
            return 0, 0
        if state.get("signature") != self.signature or self.partial.stat().st_size < state.get(
            "bytes", 0
        ):
            return 0, 0
        return int(state["users_done"]), int(state["bytes"])

    def save(self, users_done: int, size: int) -> None:
        atomic_write_json(
            self.path, {"signature": self.signature, "users_done": users_done, "bytes": size}
        )


def _signature(rec: TrainedRecommender, users: Sequence[str], options: dict) -> str:
    digest = hashlib.sha256(
        json.dumps({"run": str(rec.run_dir), **options}, sort_keys=True).encode()
    )
    digest.update("\x1f".join(users).encode("utf-8"))
    return digest.hexdigest()


def _block_text(suffix: str, rows: list[dict[str, Any]], header: bool) -> str:
    if suffix == ".jsonl":
        return "".join(json.dumps(r) + "\n" for r in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    explained = any("explanations" in r for r in rows)
    if header:
        writer.writerow(["user", "rank", "item", "score"] + (["explanation"] if explained else []))
    for r in rows:
        for rank, (item, score) in enumerate(zip(r["items"], r["scores"]), 1):
            extra = [json.dumps(r["explanations"][rank - 1])] if explained else []
            writer.writerow([r["user"], rank, item, f"{score:.6g}"] + extra)
    return buffer.getvalue()


def iter_blocks(
    rec: TrainedRecommender,
    users: Sequence[str],
    k: int,
    exclude_seen: bool,
    explain: bool,
    unknown: str,
    start: int = 0,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(users done after the block, rows)`` for consecutive blocks of ``users[start:]``."""
    for begin in range(start, len(users), rec.block_users):
        chunk = list(users[begin : begin + rec.block_users])
        recs = rec.recommend(
            chunk,
            k=k,
            exclude_seen=exclude_seen,
            unknown="popularity" if unknown != "error" else "error",
        )
        rows = []
        for r in recs:
            row = r.to_dict()
            if explain and r.fallback is None and r.items:
                row["explanations"] = explain_row(
                    rec, rec.train[rec.user_index([r.user])], r.items, np.asarray(r.scores)
                )
            rows.append(row)
        yield begin + len(chunk), rows


def export_topk(
    rec: TrainedRecommender,
    out: str | Path,
    users: Sequence[str] | None = None,
    k: int = 20,
    exclude_seen: bool = True,
    explain: bool = False,
    unknown: str = "error",
    users_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the top-``k`` of ``users`` (default: every training user) to ``out``; see the module docstring.

    Returns figures: users, seconds, users per second, whether it resumed.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise GraphrecError(
            f"--out {out}: unknown format {out.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    if suffix == ".parquet":
        require("pyarrow", f"--out {out.name}: parquet export (or write .csv / .jsonl)")
    users = [str(u) for u in (rec.user_ids.tolist() if users is None else users)]
    check_users(rec, users, users_path, unknown)
    out.parent.mkdir(parents=True, exist_ok=True)
    options = {
        "k": k,
        "exclude_seen": exclude_seen,
        "explain": explain,
        "unknown": unknown,
        "format": suffix,
    }
    started = time.perf_counter()
    if suffix == ".parquet":
        done, resumed = (
            _write_parquet(rec, out, users, k, exclude_seen, explain, unknown, progress),
            0,
        )
    else:
        done, resumed = _write_text(
            rec,
            out,
            users,
            suffix,
            _Progress(out, _signature(rec, users, options)),
            k,
            exclude_seen,
            explain,
            unknown,
            progress,
        )
    seconds = time.perf_counter() - started
    return {
        "users": done,
        "resumed_at": resumed,
        "seconds": seconds,
        "users_per_second": (done - resumed) / seconds if seconds > 0 else float("inf"),
        "out": str(out),
    }


def _write_text(
    rec, out: Path, users, suffix, state: _Progress, k, exclude_seen, explain, unknown, progress
) -> tuple[int, int]:
    done, size = state.resume_point()
    bar = tqdm(
        total=len(users),
        initial=done,
        unit="user",
        desc=f"top-{k}",
        disable=None if progress else True,
    )
    with open(state.partial, "r+b" if done or size else "wb") as handle:
        handle.truncate(size)
        handle.seek(size)
        resumed = done
        for done, rows in iter_blocks(rec, users, k, exclude_seen, explain, unknown, start=resumed):
            handle.write(_block_text(suffix, rows, header=handle.tell() == 0).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
            state.save(done, handle.tell())
            bar.update(len(rows))
        if not users and suffix == ".csv":
            handle.write(_block_text(suffix, [], header=True).encode("utf-8"))
    bar.close()
    os.replace(state.partial, out)
    state.path.unlink(missing_ok=True)
    return len(users), resumed


def _write_parquet(rec, out: Path, users, k, exclude_seen, explain, unknown, progress) -> int:
    import pyarrow as pa  # optional dependency, checked by export_topk
    import pyarrow.parquet as pq

    partial = out.with_name(out.name + ".partial")
    schema = pa.schema(
        [
            ("user", pa.string()),
            ("rank", pa.int32()),
            ("item", pa.string()),
            ("score", pa.float32()),
        ]
        + ([("explanation", pa.string())] if explain else [])
    )
    bar = tqdm(total=len(users), unit="user", desc=f"top-{k}", disable=None if progress else True)
    with pq.ParquetWriter(partial, schema) as writer:
        for _, rows in iter_blocks(rec, users, k, exclude_seen, explain, unknown):
            columns: dict[str, list] = {name: [] for name in schema.names}
            for r in rows:
                for rank, (item, score) in enumerate(zip(r["items"], r["scores"]), 1):
                    columns["user"].append(r["user"])
                    columns["rank"].append(rank)
                    columns["item"].append(item)
                    columns["score"].append(score)
                    if explain:
                        columns["explanation"].append(
                            json.dumps(r.get("explanations", [None] * rank)[rank - 1])
                        )
            writer.write_table(pa.table(columns, schema=schema))
            bar.update(len(rows))
    bar.close()
    os.replace(partial, out)
    return len(users)


__all__ = ["FORMATS", "check_users", "export_topk", "iter_blocks", "read_user_file"]
