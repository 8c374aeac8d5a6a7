"""Saved training runs as records, and "train unless already trained" for experiments and searches.

A finished run directory (written by :func:`graphrec.training.run_training`) holds
everything an experiment needs later: ``config.yaml`` (with the seed),
``results.json`` (best epoch, validation and test means, timings),
``metrics.jsonl`` (one record per epoch) and ``per_user/{valid,test}.npz``.
:func:`run_or_load` reuses such a directory when its saved config matches, which
is what lets a later call add variants without retraining the others.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from graphrec.config import RunConfig, load_config
from graphrec.data.dataset import InteractionData
from graphrec.errors import CheckpointError, ConfigError, DataFormatError
from graphrec.evaluation import EvaluationResult
from graphrec.experiment.config import config_differences
from graphrec.io import read_jsonl

__all__ = ["RunRecord", "is_finished_run", "is_run_dir", "load_run_record", "run_or_load"]

log = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """One finished training run, read back from its directory.

    Attributes:
        run_dir: the run directory.
        config: the resolved run config saved with the run.
        results: ``results.json`` (``best_epoch``, ``epochs_run``, ``valid``, ``test``, timings).
        history: the per-epoch records of ``metrics.jsonl``.
        variant: the experiment variant it belongs to (``None`` for a standalone run).
    """

    run_dir: Path
    config: RunConfig
    results: dict
    history: list[dict]
    variant: str | None = None
    _per_user: dict[str, EvaluationResult] = field(default_factory=dict, repr=False)

    @property
    def seed(self) -> int:
        return int(self.config.train.seed)

    @property
    def best_epoch(self) -> int:
        return int(self.results.get("best_epoch", 0))

    @property
    def epochs_run(self) -> int:
        return int(self.results.get("epochs_run", len(self.history)))

    @property
    def train_seconds(self) -> float:
        """Wall-clock seconds of training, validation checks included (sum over epochs)."""
        return float(
            sum(r.get("train_seconds", 0.0) + r.get("eval_seconds", 0.0) for r in self.history)
        )

    def metrics(self, split: str = "test") -> dict[str, float]:
        values = self.results.get(split)
        if values is None:
            raise DataFormatError(
                f"no {split} metrics in results.json", path=self.run_dir / "results.json"
            )
        return values

    def per_user(self, split: str = "test") -> EvaluationResult:
        """The run's per-user metric vectors of ``split`` (loaded once)."""
        if split not in self._per_user:
            self._per_user[split] = EvaluationResult.load(
                self.run_dir / "per_user" / f"{split}.npz"
            )
        return self._per_user[split]

    def extra_evaluations(self) -> dict[str, EvaluationResult]:
        """Evaluations saved beside valid/test (e.g. ``per_user/cold_start.npz``), by name."""
        folder = self.run_dir / "per_user"
        out = {}
        for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
            if path.stem not in ("valid", "test") and path.with_suffix(".metrics.json").exists():
                out[path.stem] = EvaluationResult.load(path)
        return out


def is_run_dir(path: str | Path) -> bool:
    """A training run directory (finished or not): it has ``config.yaml`` and ``metrics.jsonl`` or checkpoints."""
    path = Path(path)
    return (path / "config.yaml").is_file() and (
        (path / "metrics.jsonl").exists()
        or (path / "checkpoints").is_dir()
        or (path / "results.json").exists()
    )


def is_finished_run(path: str | Path) -> bool:
    path = Path(path)
    return (
        (path / "config.yaml").is_file()
        and (path / "results.json").is_file()
        and (path / "per_user" / "test.npz").is_file()
    )


def load_run_record(run_dir: str | Path, variant: str | None = None) -> RunRecord:
    """Read a finished run directory (raises :class:`DataFormatError` naming the missing file)."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "results.json"):
        if not (run_dir / name).is_file():
            raise DataFormatError(
                f"not a finished run: {name} is missing (train it to completion first)",
                path=run_dir,
            )
    config = load_config(run_dir / "config.yaml")
    try:
        results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(
            f"invalid JSON: {err}", path=run_dir / "results.json", line=err.lineno
        ) from err
    history = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    return RunRecord(
        run_dir=run_dir, config=config, results=results, history=history, variant=variant
    )


def run_or_load(
    config: RunConfig,
    data: InteractionData,
    callbacks: Sequence[Callable[[dict], None]] = (),
    rerun: bool = False,
    variant: str | None = None,
    hint: str = "",
) -> tuple[RunRecord, bool]:
    """Train ``config`` unless its run directory already holds the same finished run.

    Returns ``(record, reused)``.  A finished run is reused when its saved config
    equals ``config`` up to keys that cannot change results (progress, threads,
    device, evaluation batch size).  A raised ``train.epochs`` extends the run; any
    other difference is an error (``hint`` tells how to retrain), never a silent
    mix of old and new settings.  An unfinished run directory is resumed.
    ``rerun=True`` deletes the run directory first.
    """
    run_dir = config.run_dir
    if rerun and run_dir.exists():
        if not (run_dir / "config.yaml").exists():
            raise ConfigError(
                f"{run_dir}: refusing to delete a directory that is not a run directory"
            )
        log.info("deleting %s to retrain it", run_dir)
        shutil.rmtree(run_dir)
    if is_finished_run(run_dir):
        saved = load_config(run_dir / "config.yaml")
        diff = config_differences(saved, config)
        if not diff:
            return load_run_record(run_dir, variant), True
        record = load_run_record(run_dir, variant)
        if diff != ["train.epochs"] or config.train.epochs < record.epochs_run:
            raise ConfigError(
                f"{run_dir}: the saved run was trained with different settings ({', '.join(diff)}); "
                f"{hint or 'use another run name or delete the run directory to retrain'}"
            )
    from graphrec.training import run_training

    try:
        run_training(config, data, callbacks=callbacks)
    except CheckpointError as err:
        raise CheckpointError(f"{err}{'; ' + hint if hint else ''}") from err
    return load_run_record(run_dir, variant), False
