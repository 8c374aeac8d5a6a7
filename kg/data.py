"""Reading catalogue items and gold facts (TSV, UTF-8, header row, no quoting), and
finding a dataset's folder by name.

Third-party data is never part of the repository.  A dataset ``NAME`` is the folder
``<root>/NAME``, the first that exists among these roots (:func:`data_roots`):

1. an explicit folder, or ``$GRAPHREC_DATA_DIR`` (then only there);
2. ``shared/data`` beside the source checkout (``../shared/data``), where the project's
   machines and CI keep every dataset;
3. the user's cache, ``$XDG_CACHE_HOME/graphrec/datasets`` (default
   ``~/.cache/graphrec/datasets``), filled by ``python -m graphrec.datasets fetch NAME``.

This lowest layer owns the rule so that ``kg`` and ``graphrec`` resolve names alike.
Any file can still be passed explicitly.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from kg.errors import DataFormatError
from kg.io import read_input_bytes
from kg.text import clean_text

log = logging.getLogger(__name__)

DATA_ENV = "GRAPHREC_DATA_DIR"


@dataclass(frozen=True)
class Item:
    """One catalogue item.

    Attributes:
        item_id: raw id as in the file.
        title: display name (used for self-loop checks and knowledge mode).
        year: release year or empty.
        text: the catalogue text given to the model (empty = nothing to extract).
        evidence: the text tails must be found in (text without the title header).
    """

    item_id: str
    title: str
    year: str
    text: str
    evidence: str


def checkout_root() -> Path | None:
    """The source checkout holding this package (``None`` for an installed package)."""
    root = Path(__file__).resolve().parent.parent
    # site-packages has no setup.py; a checkout does
    return root if (root / "setup.py").is_file() else None


def dataset_cache_dir() -> Path:
    """The user's dataset cache, filled by ``python -m graphrec.datasets fetch``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "graphrec" / "datasets"


def data_roots(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for datasets by name, in order (see the module docstring)."""
    chosen = explicit if explicit is not None else os.environ.get(DATA_ENV)
    if chosen:
        return [Path(chosen).expanduser()]
    roots = []
    checkout = checkout_root()
    if checkout is not None:
        roots.append(checkout.parent / "shared" / "data")
    roots.append(dataset_cache_dir())
    return roots


def missing_dataset_message(
    name: str, roots: list[Path], explicit: str | os.PathLike | None = None
) -> str:
    """Where ``name`` was looked for, and how to get it."""
    searched = ", ".join(str(root / name) for root in roots)
    if explicit is None and os.environ.get(DATA_ENV):
        how = (
            f"${DATA_ENV} is set, so only that folder is searched; unset it or put '{name}/' there"
        )
    else:
        how = (
            f"download it with `python -m graphrec.datasets fetch {name}`, or set ${DATA_ENV} "
            f"to a folder holding '{name}/'"
        )
    return f"dataset {name!r} not found; looked in {searched}; {how}"


_DATASET_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def is_dataset_name(name: str) -> bool:
    """Whether ``name`` is a plain dataset name (no path separators, no ``..``)."""
    return bool(_DATASET_NAME_RE.fullmatch(name)) and ".." not in name


def first_dataset_dir(name: str, roots: list[Path]) -> Path | None:
    """The first ``<root>/name`` folder among ``roots`` that exists, else ``None``.

    ``name`` must be a name: ``../../etc`` would leave the data roots, so it is refused.
    """
    if not is_dataset_name(name):
        raise DataFormatError(
            f"dataset name {name[:200]!r} is not a name (letters, digits, '.', '_', '-', '+'; "
            "no path separators); pass files explicitly instead"
        )
    return next((root / name for root in roots if (root / name).is_dir()), None)


def find_dataset(name: str, explicit: str | os.PathLike | None = None) -> Path:
    """The folder of dataset ``name``: the first ``<root>/name`` of :func:`data_roots` that exists."""
    roots = data_roots(explicit)
    found = first_dataset_dir(name, roots)
    if found is None:
        raise DataFormatError(missing_dataset_message(name, roots, explicit))
    return found


def dataset_file(dataset: str, name: str) -> Path:
    """File ``name`` of dataset ``dataset`` (see :func:`find_dataset`)."""
    path = find_dataset(dataset) / name
    if not path.exists():
        raise DataFormatError(
            f"dataset {dataset!r} has no {name}; pass the file explicitly", path=path
        )
    return path


@dataclass(frozen=True)
class CatalogueDefaults:
    """How a dataset's catalogue is read by default.

    Attributes:
        text_columns: ``items.tsv`` columns given to the model (and searched for evidence).
        schema: the shipped schema its facts follow.
    """

    text_columns: tuple[str, ...]
    schema: str


#: Per-dataset defaults of ``kg build / evaluate / lexicon`` (command-line options override them).
CATALOGUES: dict[str, CatalogueDefaults] = {
    "ml-latest-small-tmdb": CatalogueDefaults(("overview", "tagline"), "films"),
    # product titles name the brand and the kind of product: they are evidence, not just a header
    "amazon18-scientific": CatalogueDefaults(("title", "description"), "products"),
}


def catalogue_defaults(dataset: str | None) -> CatalogueDefaults:
    """Defaults for ``dataset`` (the films defaults for an unknown dataset or a plain items file)."""
    return CATALOGUES.get(dataset or "", CATALOGUES["ml-latest-small-tmdb"])


def _read_tsv(
    path: str | Path, required: tuple[str, ...]
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) rows; non-UTF-8 bytes are replaced with a warning."""
    path = Path(path)
    raw = read_input_bytes(path, "TSV file")
    if b"\0" in raw[:65536]:
        raise DataFormatError("binary content (NUL bytes), not a TSV file", path=path)
    lines = raw.split(b"\n")
    if not lines or not lines[0].strip():
        raise DataFormatError("empty file (expected a header row)", path=path, line=1)
    decoded: list[str] = []
    bad = 0
    for number, line in enumerate(lines, start=1):
        try:
            decoded.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            bad += 1
            if bad <= 3:
                log.warning("%s:%d: invalid UTF-8 bytes replaced by U+FFFD", path, number)
            decoded.append(line.decode("utf-8", errors="replace"))
    if bad > 3:
        log.warning("%s: %d lines with invalid UTF-8 in total", path, bad)
    header = [h.strip().lstrip("\ufeff") for h in decoded[0].rstrip("\r").split("\t")]
    for column in required:
        if column not in header:
            raise DataFormatError(
                f"missing column (header has: {', '.join(header)[:200]})",
                path=path,
                line=1,
                field=column,
            )
    rows: list[tuple[int, list[str]]] = []
    for number, text in enumerate(decoded[1:], start=2):
        text = text.rstrip("\r")
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) != len(header):
            raise DataFormatError(
                f"expected {len(header)} tab-separated fields, found {len(fields)}",
                path=path,
                line=number,
            )
        rows.append((number, fields))
    return header, rows


def read_items(
    path: str | Path,
    text_columns: tuple[str, ...] = ("overview", "tagline"),
    title_column: str = "title",
) -> list[Item]:
    """Read a catalogue TSV (``item_id``, ``title``, text columns; ``year`` optional)."""
    header, rows = _read_tsv(path, ("item_id", title_column, *text_columns))
    idx = {name: i for i, name in enumerate(header)}
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, fields in rows:
        item_id = fields[idx["item_id"]].strip()
        if not item_id:
            raise DataFormatError("empty item id", path=path, line=number, field="item_id")
        if item_id in seen:
            raise DataFormatError(
                f"duplicate item id {item_id!r} (first on line {seen[item_id]})",
                path=path,
                line=number,
                field="item_id",
            )
        seen[item_id] = number
        title = clean_text(fields[idx[title_column]])
        year = fields[idx["year"]].strip() if "year" in idx else ""
        parts = [(c, clean_text(fields[idx[c]])) for c in text_columns]
        parts = [
            (c, v)
            for c, v in parts
            if v and v.casefold() not in ("nan", "none", "null", "no overview found.")
        ]
        evidence = " ".join(v for _, v in parts)
        if evidence:
            # no "Overview:" style labels: SmolLM2 copied them as JSON keys
            head = title + (f" ({year})" if year else "") + "."
            text = " ".join([head, *(v for _, v in parts)])
        else:
            text = ""
        items.append(Item(item_id=item_id, title=title, year=year, text=text, evidence=evidence))
    return items


@dataclass(frozen=True)
class GoldFact:
    item_id: str
    relation: str
    value: str


def read_gold(path: str | Path) -> list[GoldFact]:
    """Read ``gold_facts.tsv`` (``item_id``, ``relation``, ``value``)."""
    header, rows = _read_tsv(path, ("item_id", "relation", "value"))
    idx = {name: i for i, name in enumerate(header)}
    facts = []
    for _, fields in rows:
        value = fields[idx["value"]].strip()
        if not value:
            continue
        facts.append(
            GoldFact(fields[idx["item_id"]].strip(), fields[idx["relation"]].strip(), value)
        )
    return facts
