"""Atomic file output and crash-tolerant JSONL journals.

Writes go to a temporary file in the target's directory, are fsynced, then renamed
over the target, so a crash leaves the old file or the new one, never half a file.
These are the one atomic writer and the one JSON-lines journal of the three packages:
kg is the lowest layer, and ``graphrec.io`` re-exports them.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from kg.errors import DataFormatError

#: a file name or path
PathArg = str | os.PathLike[str]


def _umask() -> int:
    """The process umask: from /proc (Linux), else by setting and restoring it (not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: PathArg, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on clean exit rename it to ``path``.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (binary).  On an exception the temporary
    file is removed and ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets what open() would give
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_bytes(path: PathArg, data: bytes, gzipped: bool = False) -> None:
    """Write ``data`` atomically, gzip-compressed when ``gzipped`` (mtime 0: reproducible)."""
    if gzipped:
        data = gzip.compress(data, mtime=0)
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def read_gzip_json_document(path: PathArg, what: str, expected_format: str) -> dict:
    """The JSON object of a gzipped file of ours (a lexicon, a known-entities table ...) whose
    ``format`` field must be ``expected_format``; a missing, unreadable or foreign file is a
    :class:`~kg.errors.DataFormatError` naming it (``what``: "lexicon file", ...)."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{what} not found", path=path)
    try:
        data = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"not a gzipped JSON {what} ({exc})", path=path) from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        raise DataFormatError(f"expected format {expected_format}", path=path, field="format")
    return data


def atomic_write_text(path: PathArg, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; gzip it when the name ends in ``.gz``."""
    atomic_write_bytes(path, text.encode("utf-8"), gzipped=str(path).endswith(".gz"))


def atomic_write_json(path: PathArg, obj: Any, indent: int | None = 2) -> None:
    """Serialise ``obj`` as JSON and write it atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def read_input_bytes(path: PathArg, what: str = "file") -> bytes:
    """The bytes of an input file the user named; every way it cannot be read is a
    :class:`~kg.errors.DataFormatError` naming it (missing, a directory, unreadable)."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(f"{what} not found", path=path) from None
    except IsADirectoryError:
        raise DataFormatError(f"is a directory, not a {what}", path=path) from None
    except PermissionError:
        raise DataFormatError(f"cannot read the {what}: permission denied", path=path) from None
    except OSError as exc:
        raise DataFormatError(f"cannot read the {what}: {exc.strerror or exc}", path=path) from None


def decode_text(data: bytes, path: PathArg, what: str = "file") -> str:
    """``data`` as UTF-8 text; binary content or invalid UTF-8 is an error naming the line."""
    if b"\0" in data[:65536]:
        raise DataFormatError(f"binary content (NUL bytes), not a text {what}", path=path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x})", path=path, line=line
        ) from None


def read_text_any(path: PathArg, what: str = "file") -> str:
    """Read a UTF-8 text file, transparently gunzipping ``*.gz``; unreadable, binary or
    non-UTF-8 input is a :class:`~kg.errors.DataFormatError` naming the file."""
    data = read_input_bytes(path, what)
    if str(path).endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataFormatError(f"not a readable gzip file ({exc})", path=path) from None
    return decode_text(data, path, what)


def append_jsonl(target: IO[str] | PathArg, record: Mapping[str, Any]) -> None:
    """Append one JSON record as one line and fsync it.

    ``target`` is an open text handle (a journal keeps its file open for the whole
    build) or a path (opened for appending, parent folders created, closed again: an
    event log written now and then).  One ``write`` of one line: a crash can only tear
    the last line, which :func:`read_jsonl` drops.
    """
    line = json.dumps(record, ensure_ascii=False) + "\n"
    if isinstance(target, (str, os.PathLike)):
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            _write_synced(handle, line)
    else:
        _write_synced(target, line)


def _write_synced(handle: IO[str], line: str) -> None:
    handle.write(line)
    handle.flush()
    os.fsync(handle.fileno())


def read_jsonl(path: PathArg) -> list[dict[str, Any]]:
    """Read a JSONL file written by :func:`append_jsonl`, skipping a torn final line.

    Lines are split on newlines only (a record may hold U+2028); a line that is not JSON
    anywhere but at the end (blank lines aside) is a :class:`~kg.errors.DataFormatError`
    naming the file and line: the file was damaged, not torn by a crash.
    """
    records: list[dict[str, Any]] = []
    raw = Path(path).read_bytes()
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line.decode("utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError):
            # only the last non-empty line may be torn by a crash mid-write
            if all(not rest.strip() for rest in lines[number:]):
                break
            raise DataFormatError(
                "corrupt journal line (not JSON)", path=path, line=number
            ) from None
    return records
