"""One training run from a config: data -> model -> trainer -> results in a run directory."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from graphrec.config import RunConfig, dump_config, load_config, to_dict
from graphrec.console import logging_to
from graphrec.data.bundle import save_bundle
from graphrec.data.dataset import InteractionData, data_fingerprint
from graphrec.data.loader import load_data
from graphrec.errors import CheckpointError, LockError
from graphrec.io import atomic_write_text
from graphrec.models import Recommender, build_model
from graphrec.training.checkpoint import load_checkpoint, load_model_state
from graphrec.training.distributed import init_from_env
from graphrec.training.trainer import Trainer, TrainResult
from kg.lock import folder_lock

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (model initialisation draws from torch's global RNG)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_training(
    config: RunConfig,
    data: InteractionData | None = None,
    callbacks: Sequence[Callable[[dict], None]] = (),
    log_file: str | Path | None = None,
) -> TrainResult:
    """Train and evaluate the model of ``config``; artefacts go to ``config.run_dir``.

    ``log_file`` (the command line's ``RUN/train.log``) receives the log only once the run
    directory's lock is held, so a refused second training writes nothing into the holder's log.

    Re-running with the same run directory resumes an interrupted run (unless
    ``train.resume`` is false).  ``data`` may be passed to reuse an already loaded
    split; it must be the split ``config.data`` describes.
    """
    context = init_from_env(config.train.device)
    if data is None:
        data = load_data(config.data)
    if not context.is_main:
        return _train(config, data, callbacks, write=False)
    # one writer per run directory: two trainings would interleave metrics.jsonl and mix artefacts
    with folder_lock(config.run_dir, "training run", error=LockError), logging_to(log_file):
        return _train(config, data, callbacks, write=True)


def _train(
    config: RunConfig,
    data: InteractionData,
    callbacks: Sequence[Callable[[dict], None]],
    write: bool,
) -> TrainResult:
    run_dir = config.run_dir
    seed_everything(config.train.seed)
    model = build_model(config.model, data.n_users, data.n_items, data.train, data=data)
    trainer = Trainer(model, data, config.train, config.eval, run_dir=run_dir, callbacks=callbacks)
    trainer.check_resume()  # a refused resume must leave config.yaml describing the weights beside it
    if write:
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
        save_bundle(
            run_dir, data, data_fingerprint(data)
        )  # what graphrec.inference needs to use the run without its dataset
    log.info(
        "training %s on %s (%d users, %d items, %d train interactions) -> %s",
        config.model.name,
        data.name,
        data.n_users,
        data.n_items,
        data.train.nnz,
        run_dir,
    )
    return trainer.fit()


def load_run(
    run_dir: str | Path, data: InteractionData | None = None
) -> tuple[RunConfig, InteractionData, Recommender]:
    """Rebuild the config, data and best model of a finished run (no retraining)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml)")
    config = load_config(config_path)
    if data is None:
        data = load_data(config.data)
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    if best.get("data_fingerprint") != data_fingerprint(data):
        raise CheckpointError(
            f"{run_dir}: the dataset split differs from the one this run was trained on "
            "(dataset files or split settings changed)"
        )
    trained_with = _trained_model_settings(best, run_dir)
    if trained_with is not None and trained_with != to_dict(config.model):
        raise CheckpointError(
            f"{config_path}: the model settings differ from those {run_dir / 'checkpoints' / 'best.pt'} "
            f"was trained with (config.yaml: {to_dict(config.model)}; checkpoint: {trained_with})"[
                :1000
            ]
        )
    model = build_model(config.model, data.n_users, data.n_items, data.train, data=data)
    load_model_state(model, best["model_state"], run_dir / "checkpoints" / "best.pt")
    model.eval()
    return config, data, model


def _trained_model_settings(best: dict, run_dir: Path) -> dict | None:
    """The model settings ``best.pt`` was trained with; runs from before best.pt carried them fall
    back to ``last.pt``'s resume signature (same run, same settings); ``None`` when neither says."""
    signature = best.get("signature")
    if not isinstance(signature, dict):
        last = run_dir / "checkpoints" / "last.pt"
        signature = load_checkpoint(last).get("signature") if last.is_file() else None
    model = signature.get("model") if isinstance(signature, dict) else None
    return model if isinstance(model, dict) else None
