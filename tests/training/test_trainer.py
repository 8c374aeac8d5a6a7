"""Trainer: early stopping, best checkpoint, resume equals an uninterrupted run, NaN guard."""

import json

import pytest
import torch
from crash_helpers import crash_after_epochs

from graphrec.config import EvalConfig, TrainConfig, model_config_from_dict
from graphrec.errors import CheckpointError, TrainingError
from graphrec.io import read_jsonl
from graphrec.models import build_model
from graphrec.models.base import LossOutput
from graphrec.training import Trainer, load_checkpoint
from graphrec.training.epoch_losses import EpochLosses
from graphrec.training.sampler import BPRSampler


def make_trainer(data, run_dir, epochs=6, seed=0, model="lightgcn", **train):
    torch.manual_seed(seed)
    config = model_config_from_dict(
        {"name": model, "embedding_dim": 8, "num_layers": 2}
        if model == "lightgcn"
        else {"name": model, "embedding_dim": 8}
    )
    model = build_model(config, data.n_users, data.n_items, data.train)
    settings = dict(
        epochs=epochs,
        batch_size=64,
        learning_rate=0.01,
        eval_every=1,
        patience=0,
        seed=seed,
        progress=False,
    )
    settings.update(train)
    return Trainer(
        model,
        data,
        TrainConfig(**settings),
        EvalConfig(ks=[10, 20], batch_size=16),
        run_dir=run_dir,
    )


def test_fit_writes_run_artifacts(small_data, tmp_path):
    result = make_trainer(small_data, tmp_path).fit()
    assert result.epochs_run == 6
    assert 1 <= result.best_epoch <= 6
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == list(range(1, 7))
    assert all("valid" in r and "loss" in r for r in records)
    best_value = max(r["valid"]["recall@20"] for r in records)
    assert result.valid.metrics["recall@20"] == pytest.approx(best_value)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["best_epoch"] == result.best_epoch
    assert saved["test"]["ndcg@10"] == pytest.approx(result.test.metrics["ndcg@10"])
    assert (tmp_path / "per_user" / "test.npz").exists()
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["epoch"] == result.best_epoch


def test_same_seed_gives_identical_metrics(small_data, tmp_path):
    a = make_trainer(small_data, tmp_path / "a", epochs=3).fit()
    b = make_trainer(small_data, tmp_path / "b", epochs=3).fit()
    assert a.test.metrics == b.test.metrics


def test_early_stopping_uses_patience(small_data, tmp_path):
    trainer = make_trainer(
        small_data, tmp_path, epochs=200, patience=2, eval_every=2, learning_rate=0.05
    )
    result = trainer.fit()
    assert result.stopped_early
    assert result.epochs_run < 200
    checks_after_best = (result.epochs_run - result.best_epoch) // 2
    assert checks_after_best == 2


def test_resume_after_crash_equals_uninterrupted_run(small_data, tmp_path):
    reference = make_trainer(small_data, tmp_path / "ref", epochs=6).fit()

    crashing = make_trainer(small_data, tmp_path / "run", epochs=6)
    with crash_after_epochs(3):
        crashing.fit()

    # a fresh process would rebuild the model with a different init: use another seed for init
    resumed = make_trainer(small_data, tmp_path / "run", epochs=6)
    torch.nn.init.normal_(
        resumed.model.user_embedding.weight
    )  # must be overwritten by the checkpoint
    result = resumed.fit()
    assert result.test.metrics == reference.test.metrics
    assert result.best_epoch == reference.best_epoch
    epochs = [r["epoch"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
    assert epochs == [1, 2, 3, 4, 5, 6]


def test_finished_run_can_be_extended(small_data, tmp_path):
    make_trainer(small_data, tmp_path, epochs=2).fit()
    result = make_trainer(small_data, tmp_path, epochs=4).fit()
    assert result.epochs_run == 4
    assert [r["epoch"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]


def test_resume_with_other_settings_is_refused(small_data, tmp_path):
    make_trainer(small_data, tmp_path, epochs=2).fit()
    with pytest.raises(CheckpointError, match="different settings"):
        make_trainer(small_data, tmp_path, epochs=2, learning_rate=0.5).fit()


def test_nan_loss_names_the_epoch(small_data, tmp_path, monkeypatch):
    trainer = make_trainer(small_data, tmp_path, epochs=3)
    monkeypatch.setattr(
        trainer.model,
        "loss",
        lambda u, p, n: LossOutput(torch.tensor(float("nan"), requires_grad=True)),
    )
    with pytest.raises(TrainingError, match=r"epoch 1, batch 0: loss is nan"):
        trainer.fit()


def test_in_memory_training_without_run_dir(small_data):
    result = make_trainer(small_data, None, epochs=2, model="mf").fit()
    assert result.test.num_users == small_data.n_users


def test_unknown_select_metric_is_a_config_error(small_data, tmp_path):
    from graphrec.errors import ConfigError

    with pytest.raises(
        ConfigError,
        match="select_metric 'recall@50' is not computed; choose one of recall@10, recall@20",
    ):
        make_trainer(small_data, tmp_path, select_metric="recall@50")


def test_callbacks_see_every_epoch_and_can_stop_training(small_data, tmp_path):
    seen = []
    trainer = make_trainer(small_data, tmp_path, epochs=4)
    trainer.callbacks.append(lambda record: seen.append((record["epoch"], "valid" in record)))
    trainer.fit()
    assert seen == [(1, True), (2, True), (3, True), (4, True)]

    def stop_at_2(record):
        if record["epoch"] == 2:
            raise RuntimeError("pruned")

    stopped = make_trainer(small_data, tmp_path / "stopped", epochs=4)
    stopped.callbacks.append(stop_at_2)
    with pytest.raises(RuntimeError, match="pruned"):
        stopped.fit()
    assert load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.pt")["epoch"] == 2


def test_epoch_losses_average_parts_and_name_the_first_bad_batch():
    losses = EpochLosses(epoch=3)
    losses.add(torch.tensor(1.0), {"bpr": torch.tensor(0.5), "l2": 2.0})
    losses.add(torch.tensor(3.0), {"bpr": torch.tensor(1.5), "l2": 4.0})
    assert losses.read() == pytest.approx({"loss": 2.0, "bpr": 1.0, "l2": 3.0})
    losses.add(torch.tensor(float("inf")), {"bpr": torch.tensor(7.0)})
    losses.add(torch.tensor(float("nan")), {"bpr": torch.tensor(8.0)})
    with pytest.raises(
        TrainingError, match=r"epoch 3, batch 2: loss is inf \(parts: \{'bpr': 7.0\}\)"
    ):
        losses.read()


def test_sampler_epoch_moves_the_draws_once_and_keeps_them(small_data):
    def draws(device):
        sampler = BPRSampler(small_data.train, torch.Generator().manual_seed(5))
        return [torch.cat(b) for b in zip(*sampler.epoch(64, device))]

    for left, right in zip(draws(None), draws(torch.device("cpu"))):
        assert torch.equal(left, right)
