"""Checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint is a plain dict of tensors and Python primitives, so loading it
never unpickles arbitrary objects.  It carries ``content_sha256``, a digest of
everything in it (every tensor's dtype, shape and bytes, every number and string),
verified on load: a flipped bit in a weight is refused instead of silently changing
the metrics.  Checkpoints written before the digest existed still load (logged).
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import Any

import torch

from graphrec.errors import CheckpointError
from graphrec.io import atomic_open

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DIGEST_KEY = "content_sha256"


def _feed(digest: Any, value: Any) -> None:
    """Add ``value`` to ``digest`` unambiguously (type tag, then content)."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{value.dtype}{tuple(value.shape)}:".encode())
        if flat.numel():
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}:".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}:".encode())
        for element in value:
            _feed(digest, element)
    elif isinstance(value, float):
        digest.update(f"F{value.hex() if math.isfinite(value) else value}:".encode())
    else:  # str, int, bool, None, numpy scalars: their repr is exact
        text = repr(value)
        digest.update(f"V{len(text)}:{text}".encode())


def content_sha256(payload: dict[str, Any]) -> str:
    """SHA-256 over a checkpoint's content (its own digest field excluded)."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != DIGEST_KEY})
    return digest.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Save ``payload`` (tensors, dicts, lists, numbers, strings) atomically, with its digest."""
    payload = {"format_version": FORMAT_VERSION, **payload}
    payload[DIGEST_KEY] = content_sha256(payload)
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def load_model_state(model: torch.nn.Module, state: Any, path: str | Path) -> None:
    """``model.load_state_dict(state)``; wrong keys or shapes are a :class:`CheckpointError`."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as err:
        detail = " ".join(str(err).split())[:300]
        raise CheckpointError(
            f"{path}: the checkpoint's weights do not fit this model "
            f"(trained with other settings?): {detail}"
        ) from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt/unsafe files
        raise CheckpointError(
            f"{path}: cannot load checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: not a graphrec checkpoint (format_version {FORMAT_VERSION} expected)"
        )
    stored = payload.get(DIGEST_KEY)
    if stored is None:
        log.info("%s: written before checkpoints carried a content digest; loaded unverified", path)
    elif stored != content_sha256(payload):
        raise CheckpointError(
            f"{path}: content does not match its sha256 (the file is corrupt); "
            "retrain or restore it"
        )
    return payload
