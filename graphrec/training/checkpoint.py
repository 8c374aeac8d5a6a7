"""Checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint is a plain dict of tensors and Python primitives, so loading it
never unpickles arbitrary objects.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphrec.data.dataset import SPLITS, InteractionData
from graphrec.errors import CheckpointError
from graphrec.io import atomic_open

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Save ``payload`` (tensors, dicts, lists, numbers, strings) atomically."""
    payload = {"format_version": FORMAT_VERSION, **payload}
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt/unsafe files
        raise CheckpointError(f"{path}: cannot load checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a graphrec checkpoint (format_version {FORMAT_VERSION} expected)")
    return payload


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
