"""Load a trained run as a :class:`~graphrec.inference.recommender.TrainedRecommender`."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from graphrec.config import load_config
from graphrec.data.bundle import has_bundle, load_bundle
from graphrec.errors import CheckpointError, GraphrecError
from graphrec.inference.recommender import DEFAULT_MEMORY_MB, TrainedRecommender
from graphrec.models import build_model
from graphrec.training.checkpoint import load_checkpoint
from graphrec.training.run import load_run

log = logging.getLogger(__name__)


def load_recommender(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    memory_mb: float = DEFAULT_MEMORY_MB,
    dataset_fallback: bool = True,
) -> TrainedRecommender:
    """A ready recommender from a finished run: its best checkpoint, config and serving bundle.

    The checkpoint is loaded with ``weights_only=True``; the id maps and training matrix
    come from ``RUN/serving/`` (written by every training run), so no dataset files are
    read.  A run from before serving bundles existed is rebuilt from its dataset
    (:func:`graphrec.training.run.load_run`) when ``dataset_fallback`` is true, else it
    is refused with a :class:`CheckpointError`.

    Args:
        run_dir: the run directory (holds ``config.yaml`` and ``checkpoints/best.pt``).
        device: where the model scores (``"cpu"``, ``"cuda"``, ...).
        memory_mb: bound of one block's score matrix (see :class:`TrainedRecommender`).
        dataset_fallback: allow rebuilding an old run from its dataset.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    config = load_config(config_path)
    if not has_bundle(run_dir):
        if not dataset_fallback:
            raise CheckpointError(
                f"{run_dir}: the run has no serving bundle (serving/manifest.json); it predates "
                "graphrec.inference — retrain it, or load it with dataset_fallback=True"
            )
        log.warning(
            "%s has no serving bundle: rebuilding its data from dataset %r",
            run_dir,
            config.data.dataset,
        )
        try:
            _, data, model = load_run(run_dir)
        except GraphrecError as err:
            raise CheckpointError(
                f"{run_dir}: the run has no serving bundle and its dataset could not be rebuilt ({err})"
            ) from err
        return TrainedRecommender(
            model, data, memory_mb=memory_mb, device=device, config=config, run_dir=run_dir
        )
    data, manifest = load_bundle(run_dir)
    best_path = run_dir / "checkpoints" / "best.pt"
    best = load_checkpoint(best_path)
    if best.get("data_fingerprint") != manifest["data_fingerprint"]:
        raise CheckpointError(
            f"{best_path}: the checkpoint was not trained on the data of {run_dir / 'serving'} "
            "(fingerprints differ: the bundle belongs to another run)"
        )
    if best.get("model_name") not in (None, config.model.name):
        raise CheckpointError(
            f"{best_path}: checkpoint of model {best.get('model_name')!r}, config says {config.model.name!r}"
        )
    model = build_model(config.model, data.n_users, data.n_items, data.train, data=data)
    try:
        model.load_state_dict(best["model_state"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(
            f"{best_path}: the checkpoint does not fit model {config.model.name!r} as this graphrec "
            f"builds it (incompatible version?): {str(err).splitlines()[0]}"
        ) from err
    return TrainedRecommender(
        model, data, memory_mb=memory_mb, device=device, config=config, run_dir=run_dir
    )


__all__ = ["load_recommender"]
