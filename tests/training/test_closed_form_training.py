"""Closed-form models through the trainer and train.py: one fit = epoch 1, checkpoints, resume, re-evaluation."""

import json
from pathlib import Path

import pytest
import torch
from training_helpers import write_atomic_dataset

from graphrec.cli import evaluate as evaluate_cli
from graphrec.cli import train as train_cli
from graphrec.config import AugmentationConfig, EvalConfig, TrainConfig, model_config_from_dict
from graphrec.errors import ConfigError
from graphrec.io import read_jsonl
from graphrec.models import build_model
from graphrec.models.base import ClosedFormRecommender
from graphrec.training import Trainer, load_checkpoint, load_run

REPO = Path(__file__).resolve().parents[2]
CLOSED_FORM = {"ease": {"l2": 10.0}, "itemknn": {"neighbours": 5, "shrink": 1.0}, "popularity": {}}


def make_trainer(data, run_dir, name="ease", **train):
    config = model_config_from_dict({"name": name, **CLOSED_FORM[name]})
    model = build_model(config, data.n_users, data.n_items, data.train)
    settings = dict(
        epochs=1000, eval_every=5, patience=3, progress=False
    )  # epochs/eval_every must not matter
    settings.update(train)
    return Trainer(
        model,
        data,
        TrainConfig(**settings),
        EvalConfig(ks=[10, 20], batch_size=16),
        run_dir=run_dir,
    )


@pytest.mark.parametrize("name", sorted(CLOSED_FORM))
def test_one_fit_is_the_only_and_best_epoch(name, small_data, tmp_path):
    result = make_trainer(small_data, tmp_path, name).fit()
    assert (result.epochs_run, result.best_epoch, result.stopped_early) == (1, 1, False)
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert len(records) == 1 and records[0]["epoch"] == 1 and "loss" not in records[0]
    assert records[0]["valid"]["recall@20"] == pytest.approx(result.valid.metrics["recall@20"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["best_epoch"] == 1 and saved["test"]["ndcg@20"] == pytest.approx(
        result.test.metrics["ndcg@20"]
    )
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["stop_reason"] == "closed_form" and last["optimizer_state"] is None
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["epoch"] == 1


def test_finished_run_is_not_fitted_again(small_data, tmp_path, monkeypatch):
    first = make_trainer(small_data, tmp_path).fit()

    def refit(self):
        raise AssertionError("a finished closed-form run was fitted again")

    monkeypatch.setattr(ClosedFormRecommender, "fit", refit)
    again = make_trainer(small_data, tmp_path, epochs=2000).fit()  # even with a raised epoch limit
    assert again.test.metrics == first.test.metrics and again.epochs_run == 1


def test_crash_during_fit_then_rerun_equals_an_uninterrupted_run(small_data, tmp_path, monkeypatch):
    reference = make_trainer(small_data, tmp_path / "ref", "itemknn").fit()
    original = ClosedFormRecommender.fit

    def crash(self):
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(ClosedFormRecommender, "fit", crash)
    with pytest.raises(KeyboardInterrupt):
        make_trainer(small_data, tmp_path / "run", "itemknn").fit()
    monkeypatch.setattr(ClosedFormRecommender, "fit", original)
    assert (
        make_trainer(small_data, tmp_path / "run", "itemknn").fit().test.metrics
        == reference.test.metrics
    )


def test_in_memory_run_without_validation_split(small_data):
    small_data.valid = None
    result = make_trainer(small_data, None, "popularity").fit()
    assert (
        result.valid is None
        and result.best_epoch == 1
        and 0 <= result.test.metrics["recall@20"] <= 1
    )


def test_augmentation_is_refused_for_closed_form_models(small_data, tmp_path):
    with pytest.raises(ConfigError, match="closed-form"):
        make_trainer(small_data, tmp_path, augmentation=AugmentationConfig(path="edges.jsonl"))


@pytest.mark.parametrize("name", sorted(CLOSED_FORM))
def test_train_py_and_evaluate_py_end_to_end(name, small_data, tmp_path, capsys):
    dataset = write_atomic_dataset(small_data, tmp_path / "tiny")
    config = (
        REPO / "configs" / "ml-latest-small-tmdb" / f"{name}.yaml"
    )  # the shipped config, on the tiny data
    args = [
        "--config",
        str(config),
        "--out-dir",
        str(tmp_path / "runs"),
        "--name",
        name,
        "--quiet",
        "--set",
        f"data.dataset={dataset}",
        "--set",
        "train.num_threads=1",
    ]
    assert train_cli.main(args) == 0
    assert "best epoch: 1/1" in capsys.readouterr().out
    run = tmp_path / "runs" / name
    saved = json.loads((run / "results.json").read_text())["test"]
    assert (
        evaluate_cli.main([str(run), "--quiet"]) == 0
    )  # rebuilt from best.pt (weights_only=True), no refit
    assert f"{saved['recall@20']:.4f}" in capsys.readouterr().out
    _, data, model = load_run(run)
    assert bool(model.fitted) and model.score(torch.arange(3)).shape == (3, data.n_items)
    assert train_cli.main(args) == 0  # rerun: resumes the finished run
    assert json.loads((run / "results.json").read_text())["test"] == saved
