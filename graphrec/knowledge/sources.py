"""Where knowledge-graph triples come from, all read into one raw-id form.

Every source becomes a :class:`~graphrec.data.dataset.KnowledgeGraph`: a triples
table with string columns ``head``, ``relation``, ``tail`` (plus an optional float
``score``, e.g. an extraction confidence or an alignment agreement score) and an
item -> entity link table (``item_id``, ``entity_id``).

Sources understood by :func:`load_knowledge`:

* ``"dataset"``: the dataset's own KG (``data.kg``: ml-latest-small-tmdb's gold facts,
  a RecBole directory's ``.kg`` + ``.link``);
* a :class:`KnowledgeGraph` or a ``pandas.DataFrame`` of triples;
* a directory holding ``kg_arrays.npz`` + ``item_map.tsv`` / ``entity_map.tsv`` /
  ``relation_map.tsv`` (the ``kg`` package's export: integer triples, items first);
* a RecBole ``.kg`` file, or a directory holding one (with its ``.link`` beside it);
* a plain ``.tsv`` / ``.csv`` / ``.txt`` table with a header naming ``head``,
  ``relation``, ``tail`` (and optionally ``score``), with an optional link file.

Without a link, an entity whose id equals a raw item id of the dataset is that item
(the gold-facts convention: ``head`` = raw item id).
"""

from __future__ import annotations

import csv
from os import PathLike
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd

from graphrec.data.dataset import InteractionData, KnowledgeGraph
from graphrec.data.readers import read_atomic_file, read_table
from graphrec.errors import DataFormatError
from kg.errors import DataFormatError as KGDataFormatError
from kg.interop import KGArrays, read_arrays

TRIPLE_COLUMNS = ("head", "relation", "tail")
KG_ARRAYS_FILE = "kg_arrays.npz"
KG_ID_MAPS = ("item_map.tsv", "entity_map.tsv", "relation_map.tsv")
#: what a KG source may be: ``"dataset"``, a path, a KnowledgeGraph or a DataFrame of triples
KnowledgeSource: TypeAlias = "str | PathLike[str] | KnowledgeGraph | pd.DataFrame"


def _empty_link() -> pd.DataFrame:
    return pd.DataFrame({"item_id": pd.Series(dtype=str), "entity_id": pd.Series(dtype=str)})


def _clean_triples(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    missing = [c for c in TRIPLE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(
            f"triples need columns head, relation, tail; missing {', '.join(missing)}", path=origin
        )
    out = pd.DataFrame({c: frame[c].astype(str).str.strip() for c in TRIPLE_COLUMNS})
    if "score" in frame.columns:
        score = pd.to_numeric(frame["score"], errors="coerce")
        if score.isna().any():
            first = int(np.flatnonzero(score.isna().to_numpy())[0])
            raise DataFormatError(
                f"row {first}: score {frame['score'].iloc[first]!r} is not a number",
                path=origin,
                field="score",
            )
        out["score"] = score.astype(np.float64).to_numpy()
    empty = (out[list(TRIPLE_COLUMNS)] == "").any(axis=1)
    if empty.any():
        first = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataFormatError(f"row {first}: empty head, relation or tail", path=origin)
    return out.reset_index(drop=True)


def _clean_link(frame: pd.DataFrame | None, origin: str) -> pd.DataFrame:
    if frame is None:
        return _empty_link()
    if "item_id" not in frame.columns or "entity_id" not in frame.columns:
        raise DataFormatError("link table needs columns item_id and entity_id", path=origin)
    return pd.DataFrame(
        {"item_id": frame["item_id"].astype(str), "entity_id": frame["entity_id"].astype(str)}
    )


def read_triples_table(path: str | PathLike, link: str | PathLike | None = None) -> KnowledgeGraph:
    """A delimited table of triples (``head``, ``relation``, ``tail``[, ``score``]).

    ``.csv`` is comma-separated with quoting; anything else is tab-separated.  ``link``
    optionally names an item -> entity table (``item_id``, ``entity_id``; a RecBole
    ``.link`` file works too).
    """
    path = Path(path)
    csv = path.suffix.lower() == ".csv"
    table = read_table(path, sep="," if csv else "\t", quoting=csv)
    triples = _clean_triples(table.frame, str(path))
    return KnowledgeGraph(
        triples=triples, item_entity=_read_link(link) if link is not None else _empty_link()
    )


def _read_link(path: str | PathLike) -> pd.DataFrame:
    path = Path(path)
    first = path.read_text(encoding="utf-8-sig").split("\n", 1)[0]
    if ":" in first:  # RecBole typed header
        frame = read_atomic_file(path, required=("item_id", "entity_id"))
    else:
        csv = path.suffix.lower() == ".csv"
        frame = read_table(path, sep="," if csv else "\t", quoting=csv).frame
    return _clean_link(frame, str(path))


def read_recbole_kg(path: str | PathLike) -> KnowledgeGraph:
    """A RecBole ``NAME.kg`` file (or a directory with one) and its ``NAME.link``."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.kg"))
        if len(found) != 1:
            raise DataFormatError(f"expected exactly one .kg file, found {len(found)}", path=path)
        path = found[0]
    frame = read_atomic_file(path, required=("head_id", "relation_id", "tail_id"))
    frame = frame.rename(columns={"head_id": "head", "relation_id": "relation", "tail_id": "tail"})
    link_path = path.with_suffix(".link")
    link = None
    if link_path.exists():
        link = read_atomic_file(link_path, required=("item_id", "entity_id"))
    return KnowledgeGraph(
        triples=_clean_triples(frame, str(path)), item_entity=_clean_link(link, str(link_path))
    )


def read_kg_arrays(folder: str | PathLike) -> KnowledgeGraph:
    """The ``kg`` package's export: ``kg_arrays.npz`` (``heads``, ``relations``, ``tails``
    and optionally ``scores``) with ``item_map.tsv``, ``entity_map.tsv`` and
    ``relation_map.tsv`` (first column = raw id, row order = index; entity ``i`` is
    item ``i`` for ``i < len(item_map)``).

    The files are read by the ``kg`` package's own reader (:func:`kg.interop.read_arrays`);
    this adapter adds what graphrec needs and that reader does not give: a clear error
    for a missing id map, the optional ``scores`` array, and the length and index-range
    checks of the triples.
    """
    folder = Path(folder)
    for name in KG_ID_MAPS:
        if not (folder / name).exists():
            raise DataFormatError("missing id map of a KG export", path=folder / name)
    try:
        arrays = read_arrays(folder)
    except KGDataFormatError as err:
        raise _graphrec_error(err) from err
    heads, relations, tails = (
        np.asarray(a, dtype=np.int64) for a in (arrays.heads, arrays.relations, arrays.tails)
    )
    _check_kg_arrays(folder, arrays, heads, relations, tails)
    entity_array = np.asarray(arrays.entity_ids, dtype=object)
    relation_array = np.asarray(arrays.relation_ids, dtype=object)
    triples = pd.DataFrame(
        {
            "head": entity_array[heads],
            "relation": relation_array[relations],
            "tail": entity_array[tails],
        }
    )
    scores = _kg_array_scores(folder)
    if scores is not None:
        triples["score"] = scores
    items = arrays.item_ids
    link = pd.DataFrame({"item_id": items, "entity_id": arrays.entity_ids[: len(items)]})
    return KnowledgeGraph(triples=_clean_triples(triples, str(folder)), item_entity=link)


def _graphrec_error(err: KGDataFormatError) -> DataFormatError:
    """``err`` as graphrec's :class:`~graphrec.errors.DataFormatError` (same message and location)."""
    if isinstance(err, DataFormatError):
        return err
    converted = DataFormatError(str(err))
    converted.path, converted.line, converted.field = err.path, err.line, err.field
    return converted


def _check_kg_arrays(
    folder: Path, arrays: KGArrays, heads: np.ndarray, relations: np.ndarray, tails: np.ndarray
) -> None:
    """Equal lengths, and every index inside its id map."""
    if not (len(heads) == len(relations) == len(tails)):
        raise DataFormatError(
            "heads, relations and tails differ in length", path=folder / KG_ARRAYS_FILE
        )
    for name, values, bound in (
        ("heads", heads, len(arrays.entity_ids)),
        ("tails", tails, len(arrays.entity_ids)),
        ("relations", relations, len(arrays.relation_ids)),
    ):
        if len(values) and (values.min() < 0 or values.max() >= bound):
            raise DataFormatError(
                f"{name} index out of range [0, {bound})", path=folder / KG_ARRAYS_FILE
            )


def _kg_array_scores(folder: Path) -> np.ndarray | None:
    """The optional per-triple ``scores`` of ``kg_arrays.npz`` (:class:`kg.interop.KGArrays` has no such field)."""
    with np.load(folder / KG_ARRAYS_FILE, allow_pickle=False) as arrays:
        if "scores" not in arrays.files:
            return None
        return np.asarray(arrays["scores"], dtype=np.float64)


def kg_build_folders(kg_source: str | None) -> list[Path]:
    """Where the ``kg`` package's ``triples.tsv`` / ``entities.tsv`` of a KG source may be: its
    folder (the file's folder for a file) and that folder's parent (the build folder holding the
    ``graphrec`` export); none for ``"dataset"`` or no source."""
    if not kg_source or kg_source == "dataset":
        return []
    path = Path(kg_source).expanduser()
    folder = path if path.is_dir() else path.parent
    return [folder, folder.parent]


def read_entity_labels(kg_source: str | None) -> dict[str, str]:
    """Entity id -> label (``Character/buzz-lightyear`` -> ``Buzz Lightyear``) from the first
    ``entities.tsv`` with labels in :func:`kg_build_folders` (empty when there is none)."""
    for folder in kg_build_folders(kg_source):
        entities = folder / "entities.tsv"
        if not entities.is_file():
            continue
        with open(entities, encoding="utf-8", newline="") as handle:
            labels = {
                row["entity"]: row["label"]
                for row in csv.DictReader(handle, delimiter="\t")
                if row.get("entity") and row.get("label")
            }
        if labels:
            return labels
    return {}


def load_knowledge(
    source: KnowledgeSource,
    data: InteractionData | None = None,
    link: str | PathLike | None = None,
) -> KnowledgeGraph:
    """Read a KG from any supported ``source`` (see the module docstring).

    Args:
        source: ``"dataset"``, a :class:`KnowledgeGraph`, a DataFrame of triples, or a path.
        data: the dataset (needed for ``"dataset"``).
        link: item -> entity table for a plain triples table.
    """
    if isinstance(source, KnowledgeGraph):
        return KnowledgeGraph(
            triples=_clean_triples(source.triples, "KnowledgeGraph"),
            item_entity=_clean_link(source.item_entity, "KnowledgeGraph"),
        )
    if isinstance(source, pd.DataFrame):
        return KnowledgeGraph(
            triples=_clean_triples(source, "DataFrame"),
            item_entity=_read_link(link) if link is not None else _empty_link(),
        )
    if source == "dataset":
        if data is None:
            raise ValueError("KG source 'dataset' needs the dataset")
        if data.kg is None:
            raise DataFormatError(
                f"dataset {data.name!r} has no knowledge graph (no gold facts / .kg file)"
            )
        return load_knowledge(data.kg)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataFormatError("KG source not found", path=path)
    if path.is_dir():
        if (path / KG_ARRAYS_FILE).exists():
            return read_kg_arrays(path)
        if any(path.glob("*.kg")):
            return read_recbole_kg(path)
        raise DataFormatError(
            f"directory holds neither {KG_ARRAYS_FILE} nor a RecBole .kg file", path=path
        )
    if path.suffix == ".kg":
        return read_recbole_kg(path)
    if path.suffix == ".npz":
        return read_kg_arrays(path.parent)
    return read_triples_table(path, link)
