"""The serving bundle: what a trained run needs to be used without its dataset.

Each training run writes ``RUN/serving/`` (see :func:`save_bundle`, called by
:func:`graphrec.training.run.run_training`; read by :mod:`graphrec.inference`)::

    serving/ids.npz         raw user and item ids (unicode arrays), training item popularity
    serving/train.npz       the training matrix (scipy sparse CSR, no pickles)
    serving/side.json       item/user side information and the dataset's KG triples, when present
                            (text-native and knowledge-aware models are rebuilt from them)
    serving/manifest.json   format version, sizes and the split's fingerprint; written last,
                            so a bundle without it is incomplete and ignored

Every file is written atomically and nothing is pickled, so loading a bundle runs
no code from it.  The fingerprint is that of the full split
(:func:`graphrec.training.checkpoint.data_fingerprint`), the same one the
checkpoints store: a bundle that does not belong to a run's checkpoint is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec.data.dataset import InteractionData, KnowledgeGraph
from graphrec.errors import CheckpointError
from graphrec.io import atomic_open, atomic_write_json

#: folder of the bundle inside a run directory
BUNDLE_DIR = "serving"
#: bumped when the layout changes; older bundles are refused with a clear message
BUNDLE_VERSION = 1


def bundle_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / BUNDLE_DIR


def has_bundle(run_dir: str | Path) -> bool:
    return (bundle_dir(run_dir) / "manifest.json").is_file()


def _frame_json(frame: pd.DataFrame | None) -> Any:
    # orient="split" keeps column order and dtypes simple; values go through JSON (no pickles)
    return None if frame is None else json.loads(frame.to_json(orient="split", date_format="iso"))


def _frame_from(obj: Any) -> pd.DataFrame | None:
    if obj is None:
        return None
    return pd.DataFrame(obj["data"], columns=obj["columns"], index=obj["index"])


def save_bundle(run_dir: str | Path, data: InteractionData, fingerprint: str) -> Path:
    """Write ``RUN/serving/`` for ``data`` (skipped when an identical bundle is already there).

    ``fingerprint`` is the split's :func:`~graphrec.training.checkpoint.data_fingerprint`
    (passed in: this module sits below the training package).  Returns the bundle folder.
    """
    folder = bundle_dir(run_dir)
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old.get("version") == BUNDLE_VERSION and old.get("data_fingerprint") == fingerprint:
            return folder  # a resumed run: the bundle is already complete
        manifest_path.unlink()  # an outdated bundle is invalid until rewritten
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / "ids.npz", "wb") as handle:
        np.savez(
            handle,
            user_ids=np.asarray(data.user_ids, dtype=str),
            item_ids=np.asarray(data.item_ids, dtype=str),
            item_popularity=np.asarray(data.item_popularity(), dtype=np.int64),
        )
    with atomic_open(folder / "train.npz", "wb") as handle:
        sp.save_npz(handle, sp.csr_matrix(data.train), compressed=False)
    kg = None
    if data.kg is not None:
        kg = {
            "triples": _frame_json(data.kg.triples),
            "item_entity": _frame_json(data.kg.item_entity),
        }
    side = {
        "item_info": _frame_json(data.item_info),
        "user_info": _frame_json(data.user_info),
        "kg": kg,
        "meta": json.loads(json.dumps(data.meta, default=str)),
    }
    with atomic_open(folder / "side.json", "w") as handle:
        json.dump(side, handle)
    atomic_write_json(
        manifest_path,
        {
            "version": BUNDLE_VERSION,
            "dataset": data.name,
            "n_users": data.n_users,
            "n_items": data.n_items,
            "train_nnz": int(data.train.nnz),
            "data_fingerprint": fingerprint,
        },
    )
    return folder


def read_manifest(run_dir: str | Path) -> dict:
    path = bundle_dir(run_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read the serving bundle's manifest ({err})") from err
    if manifest.get("version") != BUNDLE_VERSION:
        raise CheckpointError(
            f"{path}: serving bundle version {manifest.get('version')!r}, this graphrec reads version "
            f"{BUNDLE_VERSION}; the run comes from an incompatible graphrec version (retrain it, or delete "
            "its serving/ folder to rebuild the data from the dataset)"
        )
    return manifest


def load_bundle(run_dir: str | Path) -> tuple[InteractionData, dict]:
    """The run's training data (test split empty) and its manifest, from ``RUN/serving/``."""
    folder = bundle_dir(run_dir)
    manifest = read_manifest(run_dir)
    try:
        with np.load(folder / "ids.npz", allow_pickle=False) as arrays:
            user_ids = arrays["user_ids"].astype(object)
            item_ids = arrays["item_ids"].astype(object)
        train = sp.load_npz(folder / "train.npz").tocsr()
        side = json.loads((folder / "side.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"{folder}: serving bundle is damaged ({type(err).__name__}: {err})"
        ) from err
    shape = (manifest["n_users"], manifest["n_items"])
    if train.shape != shape or len(user_ids) != shape[0] or len(item_ids) != shape[1]:
        raise CheckpointError(
            f"{folder}: serving bundle files disagree with its manifest (expected {shape[0]} users x {shape[1]} items)"
        )
    kg = None
    if side.get("kg") is not None:
        kg = KnowledgeGraph(
            triples=_frame_from(side["kg"]["triples"]),
            item_entity=_frame_from(side["kg"]["item_entity"]),
        )
    data = InteractionData(
        name=manifest["dataset"],
        user_ids=user_ids,
        item_ids=item_ids,
        train=train,
        test=sp.csr_matrix(shape, dtype=np.float32),
        valid=None,
        item_info=_frame_from(side.get("item_info")),
        user_info=_frame_from(side.get("user_info")),
        kg=kg,
        meta=side.get("meta") or {},
    )
    return data, manifest


def bundle_bytes(run_dir: str | Path) -> int:
    """Size of the bundle on disk (reported by the benchmarks)."""
    return sum(p.stat().st_size for p in bundle_dir(run_dir).iterdir() if p.is_file())


__all__ = [
    "BUNDLE_DIR",
    "BUNDLE_VERSION",
    "bundle_bytes",
    "bundle_dir",
    "has_bundle",
    "load_bundle",
    "read_manifest",
    "save_bundle",
]
