"""Plain-array and RecBole interop: what ``graphrec`` consumes, and existing KGs in.

:class:`KGData` is the exchange object: raw-id triples plus the item -> entity link.
It converts to contiguous integer ids (items first, so entity ``i < n_items`` is item
``i``, the KGAT/KGIN convention) and to/from RecBole atomic ``.kg`` / ``.link`` files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kg.errors import DataFormatError
from kg.io import atomic_open, atomic_write_bytes, atomic_write_text, read_text_any


@dataclass
class KGArrays:
    """Integer form of a KG.

    Attributes:
        heads, relations, tails: int64 arrays of equal length (one triple per position).
        item_ids: raw item id of entity ``i`` for ``i < len(item_ids)``.
        entity_ids: raw id of every entity (items first).
        relation_ids: raw id of every relation.
    """

    heads: np.ndarray
    relations: np.ndarray
    tails: np.ndarray
    item_ids: list[str]
    entity_ids: list[str]
    relation_ids: list[str]

    @property
    def num_triples(self) -> int:
        return int(self.heads.shape[0])


@dataclass
class KGData:
    """Raw-id triples and item links.

    Attributes:
        triples: ``(head, relation, tail)`` raw ids.
        item_entity: raw item id -> the entity id representing it in ``triples``.
    """

    triples: list[tuple[str, str, str]] = field(default_factory=list)
    item_entity: dict[str, str] = field(default_factory=dict)

    def to_arrays(self) -> KGArrays:
        """Contiguous ids: linked items first (in item-id order), then other entities."""
        item_ids = sorted(self.item_entity, key=_natural)
        entity_index: dict[str, int] = {}
        entity_ids: list[str] = []
        for item in item_ids:
            ent = self.item_entity[item]
            if ent not in entity_index:
                entity_index[ent] = len(entity_ids)
                entity_ids.append(ent)
        relation_index: dict[str, int] = {}
        heads = np.empty(len(self.triples), dtype=np.int64)
        rels = np.empty(len(self.triples), dtype=np.int64)
        tails = np.empty(len(self.triples), dtype=np.int64)
        for n, (h, r, t) in enumerate(self.triples):
            for ent in (h, t):
                if ent not in entity_index:
                    entity_index[ent] = len(entity_ids)
                    entity_ids.append(ent)
            if r not in relation_index:
                relation_index[r] = len(relation_index)
            heads[n], rels[n], tails[n] = entity_index[h], relation_index[r], entity_index[t]
        return KGArrays(heads, rels, tails, item_ids, entity_ids, list(relation_index))


def _natural(s: str) -> tuple[int, int | str]:
    return (0, int(s)) if s.isdigit() else (1, s)


def write_arrays(arrays: KGArrays, folder: str | Path) -> None:
    """``kg_arrays.npz`` (heads, relations, tails) and TSV id maps, all atomic."""
    folder = Path(folder)
    buf = io.BytesIO()
    np.savez_compressed(buf, heads=arrays.heads, relations=arrays.relations, tails=arrays.tails)
    atomic_write_bytes(folder / "kg_arrays.npz", buf.getvalue())
    atomic_write_text(
        folder / "item_map.tsv",
        "item_id\tentity_index\n"
        + "".join(f"{item}\t{i}\n" for i, item in enumerate(arrays.item_ids)),
    )
    atomic_write_text(
        folder / "entity_map.tsv",
        "entity_id\tentity_index\n"
        + "".join(f"{e}\t{i}\n" for i, e in enumerate(arrays.entity_ids)),
    )
    atomic_write_text(
        folder / "relation_map.tsv",
        "relation_id\trelation_index\n"
        + "".join(f"{r}\t{i}\n" for i, r in enumerate(arrays.relation_ids)),
    )


def read_arrays(folder: str | Path) -> KGArrays:
    folder = Path(folder)
    data = np.load(folder / "kg_arrays.npz")

    def column(name: str) -> list[str]:
        lines = (folder / name).read_text(encoding="utf-8").splitlines()[1:]
        return [line.split("\t")[0] for line in lines if line]

    n_items = len(column("item_map.tsv"))
    entity_ids = column("entity_map.tsv")
    return (
        KGArrays(
            data["heads"],
            data["relations"],
            data["tails"],
            column("item_map.tsv"),
            entity_ids,
            column("relation_map.tsv"),
        )
        if n_items <= len(entity_ids)
        else _bad(folder)
    )


def _bad(folder: Path) -> KGArrays:
    raise DataFormatError("item map longer than entity map", path=folder / "item_map.tsv")


def write_recbole(data: KGData, folder: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.kg`` and ``NAME.link`` (RecBole atomic files, tab-separated)."""
    folder = Path(folder)
    kg_path, link_path = folder / f"{name}.kg", folder / f"{name}.link"
    for path, header, rows in (
        (kg_path, "head_id:token\trelation_id:token\ttail_id:token", data.triples),
        (
            link_path,
            "item_id:token\tentity_id:token",
            sorted(data.item_entity.items(), key=lambda kv: _natural(kv[0])),
        ),
    ):
        with atomic_open(path, "w") as handle:
            handle.write(header + "\n")
            for row in rows:
                for value in row:
                    if "\t" in value or "\n" in value:
                        raise DataFormatError(f"id {value!r} contains a tab or newline", path=path)
                handle.write("\t".join(row) + "\n")
    return kg_path, link_path


def _read_atomic(path: Path, columns: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    lines = read_text_any(
        path, "RecBole atomic file"
    ).splitlines()  # missing, unreadable, binary: clear errors
    if not lines:
        raise DataFormatError("empty file (expected a header)", path=path, line=1)
    header = [h.split(":")[0].strip() for h in lines[0].split("\t")]
    idx = []
    for col in columns:
        if col not in header:
            raise DataFormatError(
                f"missing column (header: {lines[0]!r})", path=path, line=1, field=col
            )
        idx.append(header.index(col))
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < len(header):
            raise DataFormatError(
                f"expected {len(header)} fields, found {len(fields)}", path=path, line=number
            )
        rows.append((number, [fields[i].strip() for i in idx]))
    return rows


def read_recbole(kg_path: str | Path, link_path: str | Path | None = None) -> KGData:
    """Read RecBole atomic KG files (``head_id``, ``relation_id``, ``tail_id``; ``item_id``, ``entity_id``)."""
    kg_path = Path(kg_path)
    if link_path is None:
        link_path = kg_path.with_suffix(".link")
    triples = [
        (h, r, t) for _, (h, r, t) in _read_atomic(kg_path, ("head_id", "relation_id", "tail_id"))
    ]
    link: dict[str, str] = {}
    link_path = Path(link_path)
    if link_path.exists():
        for number, (item, entity) in _read_atomic(link_path, ("item_id", "entity_id")):
            if item in link and link[item] != entity:
                raise DataFormatError(
                    f"item {item!r} linked twice", path=link_path, line=number, field="item_id"
                )
            link[item] = entity
    return KGData(triples, link)
