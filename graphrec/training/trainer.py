"""BPR training with early stopping on validation, best checkpoint and crash-safe resume.

Run directory layout (all files written atomically)::

    RUN/config.yaml              resolved config
    RUN/checkpoints/last.pt      model + optimiser + sampler RNG + history (for resume)
    RUN/checkpoints/best.pt      model at the best validation epoch
    RUN/metrics.jsonl            one JSON record per epoch (loss, timings, validation metrics)
    RUN/results.json             best epoch, validation and test metrics, timings
    RUN/per_user/{valid,test}.npz  per-user metric vectors (for significance tests)

Killing a run at any point and starting it again continues from ``last.pt``; with
the same seed the final result equals that of an uninterrupted run, because the
checkpoint holds everything that evolves: parameters, Adam moments, the sampling
generator's state, the early-stopping counters and the history.

Closed-form models (``model.trainable`` false: EASE, ItemKNN, most-popular) run a
single "epoch" that calls ``model.fit()`` instead of BPR steps; it is validated,
saved as best and last checkpoint and tested like any epoch (``stop_reason``
``"closed_form"``), so resume, ``evaluate.py RUN`` and experiments work unchanged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm

from graphrec.config import EvalConfig, TrainConfig, to_dict
from graphrec.data.dataset import InteractionData, data_fingerprint
from graphrec.errors import CheckpointError, ConfigError, TrainingError
from graphrec.evaluation import EvaluationResult, Evaluator
from graphrec.io import append_jsonl, atomic_write_json, atomic_write_text
from graphrec.models.base import ClosedFormRecommender, Recommender
from graphrec.training.checkpoint import (
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from graphrec.training.distributed import (
    DistributedContext,
    all_reduce_gradients,
    all_reduce_sum,
    broadcast_parameters,
)
from graphrec.training.epoch_losses import EpochLosses
from graphrec.training.sampler import AugmentedBPRSampler, build_sampler
from graphrec.training.threads import configure_threads

log = logging.getLogger(__name__)

_RESUMABLE_TRAIN_KEYS = {"epochs", "progress", "num_threads", "resume", "device"}


@runtime_checkable
class _L2Weighted(Protocol):
    """A model that takes ``train.l2_weight`` from the trainer (e.g. MF and its descendants)."""

    def set_l2_weight(self, weight: float) -> None: ...


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns (also saved as ``results.json``)."""

    best_epoch: int
    epochs_run: int
    stopped_early: bool
    valid: EvaluationResult | None
    test: EvaluationResult
    seconds_per_epoch: float
    seconds_per_eval: float
    history: list[dict] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "seconds_per_epoch": self.seconds_per_epoch,
            "seconds_per_eval": self.seconds_per_eval,
            "valid": None if self.valid is None else self.valid.metrics,
            "test": self.test.metrics,
        }


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; other names are passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available")
    return device


class Trainer:
    """Trains any :class:`~graphrec.models.base.Recommender` with BPR.

    Args:
        model: the model (already initialised; its parameters are overwritten on resume).
        data: interactions with ``train`` and ideally ``valid`` splits.
        train_config: optimisation and early stopping settings.
        eval_config: metrics and cut-offs of the validation checks and final evaluation.
        run_dir: where checkpoints, logs and results go; ``None`` keeps everything in memory
            (no resume possible).
        callbacks: functions called with each finished epoch's record (the dict also written
            to ``metrics.jsonl``: ``epoch``, ``loss``, timings and ``valid`` metrics when
            evaluated) after its checkpoint is saved — for TensorBoard, hyper-parameter
            search pruning, custom logging.  An exception raised by a callback stops
            training cleanly; the run can be resumed.
    """

    def __init__(
        self,
        model: Recommender,
        data: InteractionData,
        train_config: TrainConfig,
        eval_config: EvalConfig,
        run_dir: str | Path | None = None,
        callbacks: Sequence[Callable[[dict], None]] = (),
    ) -> None:
        self.model = model
        self.callbacks = list(callbacks)
        self.data = data
        self.cfg = train_config
        self.eval_cfg = eval_config
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.dist = DistributedContext.current()
        self.device = resolve_device(train_config.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)  # one GPU per process
        self.model.to(self.device)
        if isinstance(model, _L2Weighted):
            model.set_l2_weight(train_config.l2_weight)
        if not model.trainable and train_config.augmentation.path:
            raise ConfigError(
                f"train.augmentation: model {model.name!r} is closed-form (no BPR batches to augment)"
            )
        self.generator = torch.Generator().manual_seed(train_config.seed)
        self.sampler = build_sampler(data, self.generator, train_config.augmentation)
        # closed-form models have no parameters to optimise; on a GPU one fused kernel per step
        # replaces Adam's per-tensor ones (the same update to float rounding)
        self.optimizer = (
            torch.optim.Adam(
                model.parameters(),
                lr=train_config.learning_rate,
                fused=True if self.device.type == "cuda" else None,
            )
            if model.trainable
            else None
        )
        self.evaluator = Evaluator(
            ks=tuple(eval_config.ks),
            metrics=tuple(eval_config.metrics),
            batch_size=eval_config.batch_size,
            item_popularity=data.item_popularity(),
            device=self.device,
        )
        self._check_select_metric()
        self.fingerprint = data_fingerprint(data)
        self.history: list[dict] = []
        self.epoch = 0
        self.best_epoch = 0
        self.best_value = -math.inf
        self.checks_without_improvement = 0
        self.finished = False
        self.stop_reason = ""

    # ---------------------------------------------------------------- paths
    def _path(self, *parts: str) -> Path | None:
        """Where this process writes ``parts`` (``None``: in memory, or not rank 0)."""
        if self.run_dir is None or not self.dist.is_main:
            return None
        return self.run_dir.joinpath(*parts)

    def _read_path(self, *parts: str) -> Path | None:
        return None if self.run_dir is None else self.run_dir.joinpath(*parts)

    def _check_select_metric(self) -> None:
        name, _, k = self.cfg.select_metric.partition("@")
        if name not in self.eval_cfg.metrics or not k.isdigit() or int(k) not in self.eval_cfg.ks:
            valid = [f"{m}@{k}" for m in self.eval_cfg.metrics for k in self.eval_cfg.ks]
            raise ConfigError(
                f"train.select_metric {self.cfg.select_metric!r} is not computed; choose one of {', '.join(valid)}"
            )

    # ---------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "model_name": self.model.name,
            "model_state": self.model.state_dict(),
            "optimizer_state": None if self.optimizer is None else self.optimizer.state_dict(),
            "generator_state": self.generator.get_state(),
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "checks_without_improvement": self.checks_without_improvement,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "history": self.history,
            "signature": self._signature(),
            "data_fingerprint": self.fingerprint,
        }

    def _signature(self) -> dict[str, Any]:
        """The settings a checkpoint must share with the current run to be resumed.

        Keys that do not change the optimisation path (``epochs``, progress, threads,
        resume, evaluation batch size) may differ, so a finished run can be extended.
        """
        train = {k: v for k, v in to_dict(self.cfg).items() if k not in _RESUMABLE_TRAIN_KEYS}
        if not self.cfg.augmentation.path:
            del train["augmentation"]  # checkpoints from before augmentation existed stay resumable
        else:  # the file's content matters, not where it lies
            if not isinstance(self.sampler, AugmentedBPRSampler):
                raise TrainingError(
                    "train.augmentation.path is set but the sampler replays no edges"
                )
            train["augmentation"]["path"] = self.sampler.augmentation_sha256
        evaluation = {k: v for k, v in to_dict(self.eval_cfg).items() if k != "batch_size"}
        return {"model": to_dict(self.model.config), "train": train, "eval": evaluation}

    def check_resume(self) -> dict[str, Any] | None:
        """The checkpoint a :meth:`fit` would resume from, after checking it may be resumed.

        Raises :class:`CheckpointError` when ``last.pt`` was written with other data or
        settings; called before anything is written to the run directory, so a refused
        resume leaves the run as it was (its ``config.yaml`` still describes its weights).
        """
        if not hasattr(self, "_resume_state"):
            path = self._read_path("checkpoints", "last.pt")
            if path is None or not self.cfg.resume or not path.exists():
                self._resume_state = None
            else:
                self._resume_state = self._checked_state(path)
        return self._resume_state

    def _checked_state(self, path: Path) -> dict[str, Any]:
        state = load_checkpoint(path, map_location=self.device)
        if state.get("data_fingerprint") != self.fingerprint:
            raise CheckpointError(
                f"{path}: checkpoint was trained on different data (split or dataset changed); "
                "use another run directory or set train.resume=false to start over"
            )
        if state.get("signature") != self._signature():
            raise CheckpointError(
                f"{path}: checkpoint was written with different settings "
                f"(saved {state.get('signature')}, now {self._signature()}); "
                "use another run name or set train.resume=false to start over"
            )
        return state

    def _resume(self) -> bool:
        state = self.check_resume()
        path = self._read_path("checkpoints", "last.pt")
        if state is None:
            broadcast_parameters(self.model)
            return False
        if path is None:  # check_resume only returns a state read from the run directory
            raise CheckpointError("a resume state without a run directory")
        load_model_state(self.model, state["model_state"], path)
        if self.optimizer is not None:
            try:
                self.optimizer.load_state_dict(state["optimizer_state"])
            except (ValueError, KeyError, TypeError) as err:
                raise CheckpointError(
                    f"{path}: optimiser state does not fit this model: {str(err)[:200]}"
                ) from None
        self.generator.set_state(state["generator_state"])
        self.epoch = int(state["epoch"])
        self.best_epoch = int(state["best_epoch"])
        self.best_value = float(state["best_value"])
        self.checks_without_improvement = int(state["checks_without_improvement"])
        self.stop_reason = str(state["stop_reason"])
        # A run that stopped at its epoch limit continues when the limit was raised.
        self.finished = (
            self.stop_reason in ("early_stopping", "closed_form") or self.epoch >= self.cfg.epochs
        )
        self.history = list(state["history"])
        self._resume_state = None  # loaded: do not keep a second copy of the weights
        # The JSONL log may hold epochs after the checkpoint (crash between the two writes)
        # or miss the last one: rebuild it from the checkpoint's history.
        log_path = self._path("metrics.jsonl")
        if log_path is not None:
            atomic_write_text(log_path, "".join(_jsonl_line(r) for r in self.history))
        log.info("resumed from %s at epoch %d (best epoch %d)", path, self.epoch, self.best_epoch)
        return True

    def _save_last(self) -> None:
        path = self._path("checkpoints", "last.pt")
        if path is not None:
            save_checkpoint(path, self._state())

    def _save_best(self) -> None:
        path = self._path("checkpoints", "best.pt")
        if path is not None:
            # the settings travel with the weights: evaluate.py refuses a config.yaml they do not match
            save_checkpoint(
                path,
                {
                    "model_name": self.model.name,
                    "model_state": self.model.state_dict(),
                    "epoch": self.epoch,
                    "data_fingerprint": self.fingerprint,
                    "signature": self._signature(),
                },
            )
        else:
            self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _load_best(self) -> None:
        # In memory for runs without a directory and for ranks other than 0, which never write;
        # otherwise (or after a resume) from best.pt.
        if getattr(self, "_best_state", None) is not None:
            self.model.load_state_dict(self._best_state)
            return
        path = self._read_path("checkpoints", "best.pt")
        if path is not None and path.exists():
            load_model_state(
                self.model, load_checkpoint(path, map_location=self.device)["model_state"], path
            )

    # -------------------------------------------------------------- training
    def _fit_closed_form(self) -> dict[str, float]:
        """The only "epoch" of a closed-form model: fit it once (no loss is recorded)."""
        if not isinstance(self.model, ClosedFormRecommender):
            raise TrainingError(
                f"model {self.model.name!r} is not trainable but not a ClosedFormRecommender either"
            )
        figures = self.model.fit()
        self.finished, self.stop_reason = True, "closed_form"
        return dict(figures)

    def _train_epoch(self, progress: bool) -> dict[str, float]:
        if not self.model.trainable:
            return self._fit_closed_form()
        optimizer = self.optimizer
        if optimizer is None:  # built for every trainable model
            raise TrainingError(f"model {self.model.name!r} is trainable but has no optimiser")
        self.model.train()
        self.model.on_epoch_start(self.epoch + 1, self.generator)
        sampler_figures = self.sampler.prepare_epoch(self.model)  # e.g. augmentation denoising
        losses = EpochLosses(self.epoch + 1)
        bar = tqdm(
            self.sampler.epoch(self.cfg.batch_size, self.device),
            total=self.sampler.num_batches(self.cfg.batch_size),
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            disable=None if progress else True,
        )
        for users, pos, neg in bar:
            # Under torch.distributed each rank takes its slice of the global batch.
            start, stop = self.dist.shard(len(users))
            share = (stop - start) / len(users)
            users, pos, neg = users[start:stop], pos[start:stop], neg[start:stop]
            optimizer.zero_grad(set_to_none=True)
            value: float | torch.Tensor = 0.0
            parts: dict[str, float | torch.Tensor] = {}
            if stop > start:
                out = self.model.loss(users, pos, neg)
                (out.loss * share if self.dist.enabled else out.loss).backward()
                value, parts = out.loss.detach(), out.parts
            if self.dist.enabled:
                all_reduce_gradients(self.model)
                # every rank records the same reduced loss, so every rank raises together
                value = float(
                    all_reduce_sum(torch.tensor([float(value) * share], dtype=torch.float64))[0]
                )
            optimizer.step()
            losses.add(value, parts)
        record = losses.read()
        record.update(sampler_figures)
        return record

    def evaluate(self, split: str) -> EvaluationResult:
        """Full-ranking evaluation of the current model on ``split`` (train items masked)."""
        exclude = [self.data.train]
        if split == "test" and self.eval_cfg.mask_valid_at_test and self.data.valid is not None:
            exclude.append(self.data.valid)
        return self.evaluator.evaluate(self.model.scorer(), self.data.split(split), exclude=exclude)

    def fit(self) -> TrainResult:
        """Train until ``epochs`` or early stopping, then evaluate the best epoch."""
        configure_threads(self.cfg.num_threads, self.dist.world_size)
        resumed = self._resume()
        has_valid = self.data.valid is not None and self.data.valid.nnz > 0
        if not has_valid:
            log.warning("no validation split: the last epoch is used, no early stopping")
        progress = self.cfg.progress
        log_path = self._path("metrics.jsonl")
        if not resumed and log_path is not None and log_path.exists():
            log_path.unlink()  # a stale log from an unrelated earlier run
        epochs_bar = tqdm(
            total=self.cfg.epochs,
            initial=self.epoch,
            desc="training",
            disable=None if progress else True,
        )
        while not self.finished and self.epoch < self.cfg.epochs:
            start = time.perf_counter()
            record: dict[str, Any] = self._train_epoch(progress)
            self.epoch += 1
            record = {"epoch": self.epoch, **record, "train_seconds": time.perf_counter() - start}
            if has_valid and (
                self.epoch % self.cfg.eval_every == 0
                or self.epoch == self.cfg.epochs
                or self.finished
            ):
                result = self.evaluate("valid")
                record["eval_seconds"] = result.seconds
                record["valid"] = result.metrics
                value = result.metrics[self.cfg.select_metric]
                if value > self.best_value:
                    self.best_value, self.best_epoch = value, self.epoch
                    self.checks_without_improvement = 0
                    self._save_best()
                else:
                    self.checks_without_improvement += 1
                if self.cfg.patience > 0 and self.checks_without_improvement >= self.cfg.patience:
                    self.finished, self.stop_reason = True, "early_stopping"
                    log.info(
                        "early stop at epoch %d: best %s=%.5f at epoch %d",
                        self.epoch,
                        self.cfg.select_metric,
                        self.best_value,
                        self.best_epoch,
                    )
            elif not has_valid:
                self.best_epoch = self.epoch
                self._save_best()
            if self.epoch >= self.cfg.epochs and not self.finished:
                self.finished, self.stop_reason = True, "max_epochs"
            self.history.append(record)
            self._save_last()
            if log_path is not None:
                append_jsonl(log_path, record)
            for callback in self.callbacks:
                callback(record)
            epochs_bar.update(1)
            epochs_bar.set_postfix(
                **({"loss": f"{record['loss']:.4f}"} if "loss" in record else {}),
                **(
                    {self.cfg.select_metric: f"{record['valid'][self.cfg.select_metric]:.4f}"}
                    if "valid" in record
                    else {}
                ),
            )
            log.debug("epoch %s", record)
        epochs_bar.close()
        return self._final_evaluation()

    def _final_evaluation(self) -> TrainResult:
        self._load_best()
        valid = (
            self.evaluate("valid")
            if self.data.valid is not None and self.data.valid.nnz > 0
            else None
        )
        test = self.evaluate("test")
        train_times = [r["train_seconds"] for r in self.history]
        eval_times = [r["eval_seconds"] for r in self.history if "eval_seconds" in r]
        result = TrainResult(
            best_epoch=self.best_epoch,
            epochs_run=self.epoch,
            stopped_early=self.stop_reason == "early_stopping",
            valid=valid,
            test=test,
            seconds_per_epoch=sum(train_times) / max(1, len(train_times)),
            seconds_per_eval=sum(eval_times) / max(1, len(eval_times))
            if eval_times
            else test.seconds,
            history=self.history,
        )
        run_dir = self._path()
        if run_dir is not None:
            if valid is not None:
                valid.save(run_dir / "per_user" / "valid.npz")
            test.save(run_dir / "per_user" / "test.npz")
            atomic_write_json(
                run_dir / "results.json",
                {**result.summary(), "data_fingerprint": self.fingerprint},
            )
        return result


def _jsonl_line(record: dict) -> str:
    import json

    return json.dumps(record) + "\n"
