"""Readers for interaction files: RecBole atomic files and generic CSV/TSV.

Every reader returns pandas DataFrames whose id columns are strings exactly as
written in the file (``"007"`` stays ``"007"``) and whose numeric columns are
``float64``.  Interaction frames use the standard column names :data:`USER`,
:data:`ITEM`, :data:`RATING` and :data:`TIME` whatever the source called them.

Bad input raises :class:`~graphrec.errors.DataFormatError` naming the file, the
1-based line (the header is line 1) and the field; a pandas traceback never
reaches the user.  To get exact line numbers each file is scanned once before
pandas parses it: per line (or per CSV record, when quoting is on) the number of
fields is checked, which also catches lines with too few fields that pandas
would silently pad.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec.errors import DataFormatError

logger = logging.getLogger(__name__)

USER = "user_id"
ITEM = "item_id"
RATING = "rating"
TIME = "timestamp"

#: RecBole field types understood in ``name:type`` headers.
ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
#: Atomic file suffixes read by :func:`read_atomic_dir`.
ATOMIC_SUFFIXES = ("inter", "item", "user", "kg", "link")
PRESPLIT = ("train", "valid", "test")

_TYPED_HEADER = re.compile(r"^(?P<name>[^:]+):(?P<type>[a-z_]+)$")


# --------------------------------------------------------------------- raw table
@dataclass
class Table:
    """A parsed delimited file: all cells as ``str``, plus where each row came from.

    Attributes:
        path: the file read.
        frame: DataFrame with one ``str`` column per header field, ``len == n_rows``.
        lines: 1-based line number of each row, shape ``[n_rows]`` (header = line 1).
        header_line: line of the header (1 unless blank lines precede it), ``None`` without one.
    """

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray
    header_line: int | None = 1

    def line_of(self, row: int) -> int:
        """Line number of row position ``row``."""
        return int(self.lines[row])


def read_table(
    path: str | PathLike,
    *,
    sep: str = "\t",
    header: bool = True,
    names: Sequence[str] | None = None,
    quoting: bool = False,
    encoding: str = "utf-8-sig",
    header_names: Callable[[list[str]], list[str]] | None = None,
) -> Table:
    """Read a delimited text file into a :class:`Table` of strings.

    Args:
        path: file to read.
        sep: one-character field separator.
        header: whether line 1 holds the column names.
        names: column names replacing the header's (the counts must agree); without
            a header and without names, columns are called ``column_0``, ``column_1``...
        quoting: honour ``"..."`` quoting (CSV); off for RecBole / TSV files, where a
            quote is an ordinary character and every line is one record.
        encoding: text encoding; the default accepts and drops a UTF-8 BOM.
        header_names: turns the header's fields into column names (e.g. strips
            RecBole ``:type`` suffixes) before empty/duplicate names are rejected.

    Empty lines are skipped (line numbers still count them); whitespace-only lines
    are records like any other.  Raises
    :class:`DataFormatError` for a missing or undecodable file, an empty file, or a
    line whose field count differs from the header's.
    """
    path = Path(path)
    if len(sep) != 1:
        raise ValueError(f"sep must be a single character, got {sep!r}")
    text = _read_text(path, encoding)
    if "\r" in text:
        text = text.replace("\r\n", "\n")  # CRLF files; a lone \r stays data, for pandas too
    scan = _scan_quoted(text, sep, path) if quoting else _scan_plain(text, sep)
    if not len(scan.lines):
        raise DataFormatError("file is empty" + (" (no header line)" if header else ""), path=path)

    counts = scan.counts[1:] if header else scan.counts
    data_lines = scan.lines[1:] if header else scan.lines
    if header:
        columns = list(scan.first)
        if header_names is not None:
            columns = header_names(columns)
        _check_columns(columns, path, int(scan.lines[0]))
    else:
        # Without a header the first record fixes the width.
        columns = [f"column_{i}" for i in range(len(scan.first))]
    if names is not None:
        if len(names) != len(columns):
            raise DataFormatError(
                f"{len(names)} column names given but the file has {len(columns)} fields",
                path=path,
                line=int(scan.lines[0]),
            )
        columns = list(names)
        _check_columns(columns, path, None)

    _check_widths(counts, columns, data_lines, path)
    frame = _parse_with_pandas(text, scan, columns, sep, header, quoting, path)
    return Table(
        path=path,
        frame=frame,
        lines=np.asarray(data_lines, dtype=np.int64),
        header_line=int(scan.lines[0]) if header else None,
    )


@dataclass
class _Scan:
    """Shape of a file before parsing: fields of its first record, the number of
    fields and the 1-based start line of every record (empty lines left out)."""

    first: list[str]
    counts: np.ndarray
    lines: np.ndarray
    records: Callable[[], list[list[str]]]  # all records, split (fallback only)


def _read_text(path: Path, encoding: str) -> str:
    """The file's text; a missing, unreadable or undecodable file is a :class:`DataFormatError`."""
    if not path.exists():
        raise DataFormatError("file not found", path=path)
    if not path.is_file():
        raise DataFormatError("not a regular file", path=path)
    try:
        raw = path.read_bytes()
    except OSError as exc:  # unreadable (permissions, I/O error): a user error, not a traceback
        raise DataFormatError(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(
            f"cannot decode as {encoding}: {exc.reason} at byte {exc.start}", path=path, line=line
        ) from None


def _check_widths(
    counts: np.ndarray, columns: list[str], data_lines: np.ndarray, path: Path
) -> None:
    """Every record must have one field per column: the first that has not names its line."""
    width = len(columns)
    bad = np.flatnonzero(counts != width)
    if bad.size:
        first = int(bad[0])
        found = int(counts[first])
        kind = "too many" if found > width else "too few"
        raise DataFormatError(
            f"{kind} fields: expected {width} ({', '.join(columns)}), found {found}"
            + (f"; {bad.size} such lines in total" if bad.size > 1 else ""),
            path=path,
            line=int(data_lines[first]),
        )


def _scan_plain(text: str, sep: str) -> _Scan:
    """Count fields per line of unquoted text (C-speed ``map``; no per-field split)."""
    all_lines = text.split("\n")
    n = len(all_lines)
    lengths = np.fromiter(map(len, all_lines), dtype=np.int64, count=n)
    counts = (
        np.fromiter(map(str.count, all_lines, itertools.repeat(sep)), dtype=np.int64, count=n) + 1
    )
    keep = np.flatnonzero(lengths > 0)
    first = all_lines[int(keep[0])].split(sep) if keep.size else []
    return _Scan(
        first=first,
        counts=counts[keep],
        lines=keep + 1,
        records=lambda: [all_lines[i].split(sep) for i in keep.tolist()],
    )


def _scan_quoted(text: str, sep: str, path: Path) -> _Scan:
    """Split CSV text with quoting; a record's line is the line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=True)
    records: list[list[str]] = []
    lines: list[int] = []
    previous_end = 0
    try:
        for record in reader:
            start = previous_end + 1
            previous_end = reader.line_num
            if not record:
                continue
            records.append(record)
            lines.append(start)
    except csv.Error as exc:
        raise DataFormatError(f"malformed CSV: {exc}", path=path, line=reader.line_num) from None
    return _Scan(
        first=records[0] if records else [],
        counts=np.fromiter(map(len, records), dtype=np.int64, count=len(records)),
        lines=np.asarray(lines, dtype=np.int64),
        records=lambda: records,
    )


def _check_columns(columns: list[str], path: Path, line: int | None) -> None:
    seen: set[str] = set()
    for name in columns:
        if not name.strip():
            raise DataFormatError("empty column name in header", path=path, line=line)
        if name in seen:
            raise DataFormatError(
                "duplicate column name in header", path=path, line=line, field=name
            )
        seen.add(name)


def _parse_with_pandas(
    text: str, scan: _Scan, columns: list[str], sep: str, header: bool, quoting: bool, path: Path
) -> pd.DataFrame:
    """Parse with pandas (dtype=str, nothing turned into NaN).

    The scan already validated the shape; pandas' own ParserError is still
    translated, as a safety net, into a DataFormatError with the file and line.
    """
    n_rows = len(scan.lines) - (1 if header else 0)
    if n_rows == 0:
        return pd.DataFrame({name: pd.Series(dtype=str) for name in columns})
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=0 if header else None,
            names=columns,
            dtype=str,
            keep_default_na=False,  # "NA", "null", "" are ids/text, not missing values
            na_filter=False,
            quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE,
            lineterminator=None if quoting else "\n",
            skip_blank_lines=True,
            index_col=False,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise DataFormatError(f"cannot parse: {exc}", path=path, line=line) from None
    if len(frame) != n_rows:
        # pandas and the scan disagree on what a record is; trust the scan.
        logger.debug(
            "%s: pandas found %d rows, the scan %d; using the scan", path, len(frame), n_rows
        )
        records = scan.records()
        frame = pd.DataFrame(records[1:] if header else records, columns=columns, dtype=str)
    frame.columns = columns
    return frame.reset_index(drop=True)


# ----------------------------------------------------------------- validation
def require_columns(table: Table, required: Sequence[str]) -> None:
    """Raise naming the first required column absent from the header."""
    for name in required:
        if name not in table.frame.columns:
            raise DataFormatError(
                f"missing required column; header has {str(list(table.frame.columns))[:200]}",
                path=table.path,
                line=table.header_line,
                field=name,
            )


def check_ids(table: Table, column: str) -> None:
    """Raise on the first empty (or whitespace-only) id in ``column``."""
    values = table.frame[column]
    # Strip only the distinct values: ids repeat a lot, and str ops are Python loops.
    unique = pd.unique(values.to_numpy(dtype=object))
    blank = [v for v in unique if not v.strip()]
    if not blank:
        return
    bad = np.flatnonzero(values.isin(blank).to_numpy())
    if bad.size:
        raise DataFormatError(
            "empty id" + (f" ({bad.size} empty ids in total)" if bad.size > 1 else ""),
            path=table.path,
            line=table.line_of(int(bad[0])),
            field=column,
        )


def parse_float(table: Table, column: str, *, allow_empty: bool = False) -> pd.Series:
    """Convert ``column`` to float64; non-numeric, NaN or infinite values raise.

    With ``allow_empty`` an empty cell becomes NaN (optional side-information
    columns); otherwise it is an error, as it is for ratings and timestamps.
    """
    raw = table.frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype(np.float64)  # accepts surrounding spaces
    bad = np.flatnonzero(~np.isfinite(values.to_numpy()))
    if allow_empty and bad.size:
        bad = bad[[bool(raw.iloc[int(i)].strip()) for i in bad]]
    if bad.size:
        row = int(bad[0])
        shown = raw.iloc[row]
        what = "empty value" if not shown.strip() else f"expected a finite number, got {shown!r}"
        raise DataFormatError(
            what + (f" ({bad.size} bad values in total)" if bad.size > 1 else ""),
            path=table.path,
            line=table.line_of(row),
            field=column,
        )
    return values


def _parse_token_seq(raw: pd.Series, separator: str) -> pd.Series:
    # RecBole drops empty tokens, so "a  b" gives ["a", "b"].
    return raw.map(lambda cell: [tok for tok in cell.split(separator) if tok])


def _parse_float_seq(table: Table, column: str, separator: str) -> pd.Series:
    out: list[list[float]] = []
    for row, cell in enumerate(table.frame[column].tolist()):
        seq: list[float] = []
        for token in cell.split(separator):
            if not token:
                continue
            try:
                value = float(token)
            except ValueError:
                value = float("nan")
            if not np.isfinite(value):
                raise DataFormatError(
                    f"expected finite numbers separated by {separator!r}, got {token!r}",
                    path=table.path,
                    line=table.line_of(row),
                    field=column,
                )
            seq.append(value)
        out.append(seq)
    return pd.Series(out, index=table.frame.index, dtype=object)


# --------------------------------------------------------------- atomic files
def parse_atomic_header(columns: Sequence[str], path: str | PathLike) -> dict[str, str]:
    """Map ``name:type`` header fields to ``{name: type}``; raise on a bad field."""
    types: dict[str, str] = {}
    for column in columns:
        match = _TYPED_HEADER.match(column.strip())
        if match is None:
            raise DataFormatError(
                f"header field {column!r} is not 'name:type' (type one of {', '.join(ATOMIC_TYPES)})",
                path=path,
                line=1,
                field=column,
            )
        name, kind = match.group("name"), match.group("type")
        if kind not in ATOMIC_TYPES:
            raise DataFormatError(
                f"unknown field type {kind!r}; expected one of {', '.join(ATOMIC_TYPES)}",
                path=path,
                line=1,
                field=name,
            )
        if name in types:
            raise DataFormatError("duplicate column name in header", path=path, line=1, field=name)
        types[name] = kind
    return types


def read_atomic_file(
    path: str | PathLike,
    *,
    required: Sequence[str] = (),
    numeric_required: Sequence[str] = (),
    seq_separator: str = " ",
) -> pd.DataFrame:
    """Read one RecBole atomic file (``.inter``, ``.item``, ``.user``, ``.kg``, ``.link``).

    The file is tab-separated with a typed header such as
    ``user_id:token\\titem_id:token\\trating:float``.  Returned columns drop the
    ``:type`` suffix; ``token`` stays ``str``, ``float`` becomes ``float64``,
    ``token_seq`` a list of ``str`` and ``float_seq`` a list of ``float`` (sequence
    items split on ``seq_separator``, empty items dropped, as RecBole does).

    Args:
        path: the file.
        required: columns (names without type) that must exist and be non-empty ids.
        numeric_required: float columns in which an empty value is an error too.
        seq_separator: separator inside ``token_seq`` / ``float_seq`` cells.

    Returns:
        DataFrame with one row per data line; ``frame.attrs["field_types"]`` holds
        ``{name: type}`` and ``frame.attrs["path"]`` the file.
    """
    types: dict[str, str] = {}

    def strip_types(header: list[str]) -> list[str]:
        types.update(parse_atomic_header(header, path))
        return list(types)

    table = read_table(path, sep="\t", header=True, quoting=False, header_names=strip_types)
    require_columns(table, required)
    for name in required:
        if types[name] == "token":
            check_ids(table, name)
    frame = table.frame.copy()
    for name, kind in types.items():
        if kind == "float":
            frame[name] = parse_float(table, name, allow_empty=name not in numeric_required)
        elif kind == "token_seq":
            frame[name] = _parse_token_seq(table.frame[name], seq_separator)
        elif kind == "float_seq":
            frame[name] = _parse_float_seq(table, name, seq_separator)
    frame.attrs["field_types"] = types
    frame.attrs["path"] = str(table.path)
    return frame


@dataclass
class AtomicDataset:
    """The atomic files of one dataset directory, as read by :func:`read_atomic_dir`.

    Attributes:
        name: dataset name (the common file stem, e.g. ``ml-100k``).
        directory: the directory read.
        inter: all interactions (``NAME.inter``), or ``None`` when pre-split.
        splits: ``{"train"|"valid"|"test": frame}`` from ``NAME.<split>.inter``, or ``None``.
        item, user: side information (``NAME.item`` / ``NAME.user``) or ``None``.
        kg: triples with columns ``head``, ``relation``, ``tail`` or ``None``.
        link: item -> entity map with columns ``item_id``, ``entity_id`` or ``None``.
        field_types: ``{file name: {column: type}}`` of every file read.
    """

    name: str
    directory: Path
    inter: pd.DataFrame | None = None
    splits: dict[str, pd.DataFrame] | None = None
    item: pd.DataFrame | None = None
    user: pd.DataFrame | None = None
    kg: pd.DataFrame | None = None
    link: pd.DataFrame | None = None
    field_types: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def presplit(self) -> bool:
        return self.splits is not None

    @property
    def files(self) -> list[str]:
        return sorted(self.field_types)


def find_atomic_name(directory: str | PathLike) -> str:
    """The dataset name of a directory of atomic files (the stem shared by its files).

    ``ml-100k/ml-100k.inter`` gives ``ml-100k``; ``x/x.train.inter`` gives ``x``.
    Raises :class:`DataFormatError` when there is no ``.inter`` file or several names.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError("dataset directory not found", path=directory)
    names = set()
    for file in directory.glob("*.inter"):
        stem = file.name[: -len(".inter")]
        for split in PRESPLIT:
            if stem.endswith("." + split):
                stem = stem[: -len(split) - 1]
                break
        names.add(stem)
    if not names:
        raise DataFormatError(
            "no RecBole .inter file (NAME.inter or NAME.train.inter) in directory", path=directory
        )
    if len(names) > 1:
        raise DataFormatError(
            f"several datasets in one directory ({', '.join(sorted(names))}); pass name=",
            path=directory,
        )
    return names.pop()


def read_atomic_dir(
    directory: str | PathLike,
    name: str | None = None,
    *,
    user_field: str = USER,
    item_field: str = ITEM,
    rating_field: str = RATING,
    time_field: str = TIME,
    head_field: str = "head_id",
    relation_field: str = "relation_id",
    tail_field: str = "tail_id",
    entity_field: str = "entity_id",
    seq_separator: str = " ",
) -> AtomicDataset:
    """Read every atomic file of dataset ``name`` in ``directory``.

    Interactions come from ``NAME.train.inter`` / ``NAME.valid.inter`` /
    ``NAME.test.inter`` when ``NAME.train.inter`` exists (pre-split benchmark; a
    missing valid file is allowed, a missing test file is an error), else from
    ``NAME.inter``.  Field names follow RecBole's defaults (``USER_ID_FIELD`` etc.)
    and can be overridden; in the returned frames they are renamed to the standard
    ``user_id``/``item_id``/``rating``/``timestamp``, KG columns to
    ``head``/``relation``/``tail`` and link columns to ``item_id``/``entity_id``.
    """
    directory = Path(directory)
    name = name or find_atomic_name(directory)
    result = AtomicDataset(name=name, directory=directory)
    inter_map = {user_field: USER, item_field: ITEM, rating_field: RATING, time_field: TIME}

    def inter(path: Path) -> pd.DataFrame:
        frame = read_atomic_file(
            path,
            required=(user_field, item_field),
            numeric_required=(rating_field, time_field),
            seq_separator=seq_separator,
        )
        result.field_types[path.name] = frame.attrs["field_types"]
        return _standardise(frame, inter_map)

    train = directory / f"{name}.train.inter"
    if train.exists():
        result.splits = {"train": inter(train)}
        for split in ("valid", "test"):
            path = directory / f"{name}.{split}.inter"
            if path.exists():
                result.splits[split] = inter(path)
            elif split == "test":
                raise DataFormatError(
                    "pre-split dataset has a train file but no test file", path=path
                )
    else:
        result.inter = inter(directory / f"{name}.inter")

    optional = {
        "item": ((item_field,), {item_field: ITEM}),
        "user": ((user_field,), {user_field: USER}),
        "kg": (
            (head_field, relation_field, tail_field),
            {head_field: "head", relation_field: "relation", tail_field: "tail"},
        ),
        "link": ((item_field, entity_field), {item_field: ITEM, entity_field: "entity_id"}),
    }
    for suffix, (required, rename) in optional.items():
        path = directory / f"{name}.{suffix}"
        if not path.exists():
            continue
        frame = read_atomic_file(path, required=required, seq_separator=seq_separator)
        result.field_types[path.name] = frame.attrs["field_types"]
        setattr(result, suffix, _standardise(frame, rename))
    logger.info(
        "read atomic dataset %s from %s: %s",
        name,
        directory,
        ", ".join(f"{f} ({len(t)} fields)" for f, t in result.field_types.items()),
    )
    return result


def _standardise(frame: pd.DataFrame, rename: Mapping[str, str]) -> pd.DataFrame:
    attrs = dict(frame.attrs)
    present = {old: new for old, new in rename.items() if old in frame.columns and old != new}
    clash = [new for new in present.values() if new in frame.columns and new not in present]
    if clash:
        raise DataFormatError(
            f"cannot rename to {clash[0]!r}: the file already has such a column",
            path=attrs.get("path"),
            line=1,
        )
    out = frame.rename(columns=present)
    out.attrs = attrs
    return out


# --------------------------------------------------------------- generic CSV
def read_interactions(
    path: str | PathLike,
    *,
    user: str | int = USER,
    item: str | int = ITEM,
    rating: str | int | None = None,
    timestamp: str | int | None = None,
    sep: str = ",",
    header: bool = True,
    names: Sequence[str] | None = None,
    quoting: bool | None = None,
) -> pd.DataFrame:
    """Read interactions from a CSV/TSV file with a column mapping.

    Args:
        path: the file.
        user, item: column holding the user / item id: a header name, or a 0-based
            position (needed when ``header`` is false and ``names`` is not given).
        rating, timestamp: optional columns; parsed as float (unix seconds for
            timestamps); a non-numeric, empty or NaN value is an error.
        sep: field separator (``","``, ``"\\t"``, ``";"``, ...).
        header: whether the first line holds column names.
        names: column names to use (required for name-based mapping without header).
        quoting: honour ``"`` quoting; default on for ``","`` and off otherwise.

    Returns:
        DataFrame with columns ``user_id``, ``item_id`` (str) and, when mapped,
        ``rating`` and ``timestamp`` (float64), in file order.
    """
    if quoting is None:
        quoting = sep == ","
    if not header and names is None:
        positions = [c for c in (user, item, rating, timestamp) if c is not None]
        if not all(isinstance(c, int) for c in positions):
            raise ValueError("without a header, map columns by 0-based position or pass names=")
    table = read_table(path, sep=sep, header=header, names=names, quoting=quoting)
    columns = list(table.frame.columns)

    def resolve(spec: str | int) -> str:
        if isinstance(spec, int):
            if not 0 <= spec < len(columns):
                raise DataFormatError(
                    f"column position {spec} out of range: file has {len(columns)} columns",
                    path=table.path,
                    line=1,
                )
            return columns[spec]
        return spec

    mapping = {USER: resolve(user), ITEM: resolve(item)}
    if rating is not None:
        mapping[RATING] = resolve(rating)
    if timestamp is not None:
        mapping[TIME] = resolve(timestamp)
    require_columns(table, list(mapping.values()))
    out = pd.DataFrame(index=table.frame.index)
    for standard, source in mapping.items():
        if standard in (USER, ITEM):
            check_ids(table, source)
            out[standard] = table.frame[source]
        else:
            out[standard] = parse_float(table, source)
    out.attrs["path"] = str(table.path)
    out.attrs["columns"] = mapping
    return out
