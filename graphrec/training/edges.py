"""Reading the replayable augmented edge file: one (user, liked, disliked) triplet per line, with provenance.

Format (JSONL, UTF-8; raw dataset ids, so the file is readable and survives re-indexing)::

    {"kind": "header", "format": "graphrec-augmentation/1", "dataset": ..., "data_fingerprint": ...,
     "prompt_version": ..., "backend": {...}, "base_run": ..., "settings": {...}, "counts": {...}, ...}
    {"kind": "edge", "user": "12", "pos": "318", "neg": "1", "candidates": ["318", ...],
     "backend": {...}, "prompt_version": ..., "time": "2025-...Z", "cache_key": ..., "response": ...}
    ...

It is written by the LLM augmentation stage (:mod:`graphrec.augmentation`, which also
writes it with :func:`graphrec.augmentation.edges.write_edges`); training replays it
(``train.augmentation.path``) without calling any LLM, so the reader lives here.  The header's
``data_fingerprint`` ties the file to the split it was generated on: the candidates were
unseen training items of exactly that split, so loading it against another split is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphrec.data.dataset import InteractionData, data_fingerprint
from graphrec.errors import DataFormatError
from graphrec.io import iter_json_objects

FORMAT = "graphrec-augmentation/1"
_EDGE_FIELDS = ("user", "pos", "neg")


@dataclass
class AugmentedEdges:
    """Augmented BPR triplets in internal ids, with the file's header.

    Attributes:
        users, pos_items, neg_items: ``[n]`` int64 tensors.
        header: the file's header record (provenance and generation summary).
        sha256: digest of the file's bytes (part of a training run's resume signature).
    """

    users: torch.Tensor
    pos_items: torch.Tensor
    neg_items: torch.Tensor
    header: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    def __len__(self) -> int:
        return int(self.users.numel())


def read_records(path: str | Path) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    """``(header, [(line number, edge record), ...])``; malformed input raises naming file and line."""
    path = Path(path)
    header: dict[str, Any] | None = None
    edges: list[tuple[int, dict[str, Any]]] = []
    for number, record in iter_json_objects(path, "augmented edge file"):
        kind = record.get("kind")
        if header is None:
            if kind != "header" or record.get("format") != FORMAT:
                raise DataFormatError(
                    f"the first line must be a header with format {FORMAT!r}",
                    path=path,
                    line=number,
                    field="format",
                )
            header = record
            continue
        if kind != "edge":
            raise DataFormatError(
                f"unknown record kind {kind!r} (expected 'edge')",
                path=path,
                line=number,
                field="kind",
            )
        for name in _EDGE_FIELDS:
            if not isinstance(record.get(name), (str, int)) or isinstance(record.get(name), bool):
                raise DataFormatError("missing or not an id", path=path, line=number, field=name)
        edges.append((number, record))
    if header is None:
        raise DataFormatError("empty file (no header)", path=path)
    return header, edges


def load_edges(
    path: str | Path, data: InteractionData, check_fingerprint: bool = True
) -> AugmentedEdges:
    """Read an augmented edge file and map it to ``data``'s internal ids.

    Raises :class:`~graphrec.errors.DataFormatError` naming the file, line and field for
    unknown ids, a liked item equal to the disliked one, either being already a
    training item of the user, and (``check_fingerprint``) a file generated on another split.
    """
    path = Path(path)
    header, records = read_records(path)
    if check_fingerprint and header.get("data_fingerprint") not in (None, data_fingerprint(data)):
        raise DataFormatError(
            f"generated on another split of {header.get('dataset')!r} (data_fingerprint differs): its candidates were "
            "unseen items of that split; regenerate it for this split",
            path=path,
            line=1,
            field="data_fingerprint",
        )
    users, pos, neg = [], [], []
    for number, record in records:
        ids = []
        for name, lookup in (
            ("user", data.user_index),
            ("pos", data.item_index),
            ("neg", data.item_index),
        ):
            try:
                ids.append(int(lookup([str(record[name])])[0]))
            except KeyError as err:
                raise DataFormatError(
                    f"{err.args[0]} in dataset {data.name!r}", path=path, line=number, field=name
                ) from None
        if ids[1] == ids[2]:
            raise DataFormatError(
                "the liked and the disliked item are the same", path=path, line=number, field="neg"
            )
        for field_name, item in (("pos", ids[1]), ("neg", ids[2])):
            if (
                data.train[ids[0], item] != 0
            ):  # candidates are unseen items: this file is not for this split
                raise DataFormatError(
                    f"the {'liked' if field_name == 'pos' else 'disliked'} item is already a "
                    "training interaction of the user",
                    path=path,
                    line=number,
                    field=field_name,
                )
        users.append(ids[0])
        pos.append(ids[1])
        neg.append(ids[2])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    as_tensor = lambda values: torch.from_numpy(np.asarray(values, dtype=np.int64))  # noqa: E731
    return AugmentedEdges(
        as_tensor(users), as_tensor(pos), as_tensor(neg), header=header, sha256=digest
    )
