"""Atomic file output and JSON-lines helpers: ``kg.io``'s, plus a strict reader of user files.

Every file graphrec writes (checkpoints, splits, logs, results) goes through these
helpers: data is written to a temporary file in the same directory, flushed and
fsynced, then renamed over the target.  A crash therefore leaves either the old
file or the new one, never a half-written file that a later run would trust.

The writers and the journal pair (:func:`append_jsonl` / :func:`read_jsonl`) are
``kg.io``'s, the one implementation of the three packages (kg is the lowest layer).
JSON is written as UTF-8 (``ensure_ascii=False``), a ``.gz`` target of
:func:`atomic_write_text` is gzipped, and a damaged (not merely torn) journal line is a
:class:`kg.errors.DataFormatError` naming file and line.  :func:`iter_json_objects` is
different on purpose: it reads files users hand us, where every bad line is an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphrec.errors import DataFormatError
from kg.io import (
    PathArg,
    append_jsonl,
    atomic_open,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
)

__all__ = [
    "append_jsonl",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "iter_json_objects",
    "read_jsonl",
]


def iter_json_objects(path: PathArg, what: str = "file") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSON-lines input file, strictly.

    Unlike :func:`read_jsonl` (our own logs, where a torn last line is expected after a
    crash), this is for files users hand us: a missing file, a line that is not JSON or not
    an object raises :class:`~graphrec.errors.DataFormatError` naming the file and line.
    """
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
