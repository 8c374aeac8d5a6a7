"""The one data object every model, trainer and evaluator consumes.

:class:`InteractionData` holds a user x item interaction matrix per split as
``scipy.sparse.csr_matrix`` (rows = internal user ids, columns = internal item
ids), the raw <-> internal id maps, optional item/user side information and
optional knowledge-graph triples.  Internal ids are contiguous integers
``0..n_users-1`` and ``0..n_items-1``; raw ids are kept as strings exactly as they
appear in the source files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec.errors import DataFormatError

SPLITS = ("train", "valid", "test")


@dataclass
class KnowledgeGraph:
    """Knowledge-graph triples in raw ids, plus the item -> entity link.

    Attributes:
        triples: DataFrame with string columns ``head``, ``relation``, ``tail``.
        item_entity: DataFrame with string columns ``item_id`` (raw item id) and
            ``entity_id``; items without a row are not linked to the KG.
    """

    triples: pd.DataFrame
    item_entity: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {"item_id": pd.Series(dtype=str), "entity_id": pd.Series(dtype=str)}
        )
    )

    @property
    def num_triples(self) -> int:
        return len(self.triples)


@dataclass
class InteractionData:
    """Interactions split into train / valid / test, with id maps and side information.

    Attributes:
        name: dataset name (registry name or file stem).
        user_ids: raw user id of each internal user, shape ``[n_users]`` (object array of str).
        item_ids: raw item id of each internal item, shape ``[n_items]``.
        train: ``[n_users, n_items]`` CSR matrix of training interactions (values = 1.0
            for implicit feedback, or the interaction weight).
        valid: validation interactions (same shape), or ``None`` when no validation split.
        test: test interactions (same shape).
        item_info: side information per internal item (DataFrame indexed ``0..n_items-1``,
            text columns such as ``title``/``overview``), or ``None``.
        user_info: side information per internal user, or ``None``.
        kg: optional knowledge graph in raw ids.
        meta: free-form provenance (source files, preprocessing counts, split method).
    """

    name: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    train: sp.csr_matrix
    test: sp.csr_matrix
    valid: sp.csr_matrix | None = None
    item_info: pd.DataFrame | None = None
    user_info: pd.DataFrame | None = None
    kg: KnowledgeGraph | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = (len(self.user_ids), len(self.item_ids))
        for split in SPLITS:
            matrix = getattr(self, split)
            if matrix is None:
                continue
            if not sp.issparse(matrix):
                raise TypeError(
                    f"{split} must be a scipy sparse matrix, got {type(matrix).__name__}"
                )
            matrix = sp.csr_matrix(matrix, dtype=np.float32)
            matrix.sum_duplicates()
            matrix.sort_indices()
            if matrix.shape != shape:
                raise ValueError(
                    f"{split} has shape {matrix.shape}, expected {shape} (users x items)"
                )
            setattr(self, split, matrix)
        self._user_index = {raw: i for i, raw in enumerate(self.user_ids.tolist())}
        self._item_index = {raw: i for i, raw in enumerate(self.item_ids.tolist())}

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def split(self, name: str) -> sp.csr_matrix:
        """Return the CSR matrix of split ``name`` (``train``/``valid``/``test``)."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        matrix = getattr(self, name)
        if matrix is None:
            raise DataFormatError(f"dataset {self.name!r} has no {name} split")
        return matrix

    # -------------------------------------------------------------- id lookup
    def user_index(self, raw_ids: Iterable[str]) -> np.ndarray:
        """Internal ids of raw user ids; raises ``KeyError`` naming the first unknown id."""
        return _lookup(self._user_index, raw_ids, "user")

    def item_index(self, raw_ids: Iterable[str]) -> np.ndarray:
        """Internal ids of raw item ids; raises ``KeyError`` naming the first unknown id."""
        return _lookup(self._item_index, raw_ids, "item")

    # ------------------------------------------------------------- statistics
    def item_popularity(self) -> np.ndarray:
        """Number of training interactions per item, shape ``[n_items]``."""
        return np.asarray((self.train > 0).sum(axis=0)).ravel()

    def statistics(self) -> dict:
        """Counts per split, density and sparsity, for dataset cards and logs."""
        stats: dict = {"name": self.name, "users": self.n_users, "items": self.n_items}
        total = 0
        for split in SPLITS:
            matrix = getattr(self, split)
            nnz = 0 if matrix is None else int(matrix.nnz)
            stats[f"{split}_interactions"] = nnz
            if matrix is not None:
                stats[f"{split}_users"] = int((np.diff(matrix.indptr) > 0).sum())
            total += nnz
        stats["interactions"] = total
        stats["density"] = total / max(1, self.n_users * self.n_items)
        if self.kg is not None:
            stats["kg_triples"] = self.kg.num_triples
        return stats


def _lookup(index: dict, raw_ids: Iterable[str], kind: str) -> np.ndarray:
    out = []
    for raw in raw_ids:
        key = str(raw)
        if key not in index:
            raise KeyError(f"unknown {kind} id {key!r}")
        out.append(index[key])
    return np.asarray(out, dtype=np.int64)


def data_fingerprint(data: InteractionData) -> str:
    """SHA-256 over the id maps and the split matrices' structure.

    Stored with each run so that evaluating a checkpoint later on a different
    split (or a re-split dataset) is detected instead of silently reported.
    """
    digest = hashlib.sha256()
    for ids in (data.user_ids, data.item_ids):
        digest.update("\x1f".join(map(str, ids.tolist())).encode("utf-8"))
        digest.update(b"\x1e")
    for split in SPLITS:
        matrix = getattr(data, split)
        if matrix is None:
            digest.update(b"none")
            continue
        digest.update(np.ascontiguousarray(matrix.indptr, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(matrix.indices, dtype=np.int64).tobytes())
    return digest.hexdigest()
