"""Atomic file output (:func:`atomic_open` is ``kg.io``'s) and JSON-lines helpers.

Every file graphrec writes (checkpoints, splits, logs, results) goes through these
helpers: data is written to a temporary file in the same directory, flushed and
fsynced, then renamed over the target.  A crash therefore leaves either the old
file or the new one, never a half-written file that a later run would trust.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kg.io import (
    atomic_open,
)  # the one atomic writer of all three packages (kg is the lowest layer)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Serialise ``obj`` as JSON and write it to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON record as a line and fsync it.

    Appends are not atomic renames, but a torn last line can only come from a crash
    during this call; :func:`read_jsonl` ignores an incomplete final line.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def iter_json_objects(path: str | os.PathLike, what: str = "file") -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of a JSON-lines input file, strictly.

    Unlike :func:`read_jsonl` (our own logs, where a torn last line is expected after a
    crash), this is for files users hand us: a missing file, a line that is not JSON or not
    an object raises :class:`~graphrec.errors.DataFormatError` naming the file and line.
    """
    from graphrec.errors import DataFormatError

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(
            f"{what} not found" if not path.exists() else f"not a regular file (a {what} expected)",
            path=path,
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"cannot read the {what}: {exc.strerror or exc}", path=path) from None
    for number, line_bytes in enumerate(raw.split(b"\n"), start=1):
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataFormatError(
                f"not UTF-8 text (byte 0x{line_bytes[exc.start]:02x} at column {exc.start + 1})",
                path=path,
                line=number,
            ) from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"not JSON ({err.msg})", path=path, line=number) from None
        if not isinstance(record, dict):
            raise DataFormatError("a line must be a JSON object", path=path, line=number)
        yield number, record


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file written by :func:`append_jsonl`, skipping a torn final line."""
    records: list[dict] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):  # torn write from a crash: drop it
                break
            raise
    return records
