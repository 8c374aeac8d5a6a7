"""The shared crash injection: it interrupts at the chosen epoch, insists on the crash, and restores the trainer."""

import pytest
import torch
from crash_helpers import crash_after_epochs

from graphrec.config import EvalConfig, TrainConfig, model_config_from_dict
from graphrec.data.synthetic import random_interactions
from graphrec.io import read_jsonl
from graphrec.models import build_model
from graphrec.training import Trainer


def make_trainer(run_dir, epochs=3):
    torch.manual_seed(0)
    data = random_interactions(n_users=30, n_items=40, per_user=6)
    config = model_config_from_dict({"name": "mf", "embedding_dim": 8})
    model = build_model(config, data.n_users, data.n_items, data.train)
    train = TrainConfig(
        epochs=epochs, batch_size=64, learning_rate=0.01, eval_every=1, seed=0, progress=False
    )
    return Trainer(model, data, train, EvalConfig(ks=[10, 20], batch_size=16), run_dir=run_dir)


def test_the_run_dies_after_the_chosen_epoch_and_the_trainer_is_restored(tmp_path):
    original = Trainer._train_epoch
    with crash_after_epochs(2):
        make_trainer(tmp_path / "run").fit()
    assert [r["epoch"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")] == [1, 2]
    assert Trainer._train_epoch is original
    assert make_trainer(tmp_path / "run").fit().epochs_run == 3  # resumes with the real trainer


def test_a_run_that_never_reaches_the_crash_fails_the_test(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="KeyboardInterrupt"):
        with crash_after_epochs(5):
            make_trainer(tmp_path / "run", epochs=2).fit()
    assert Trainer._train_epoch.__name__ == "_train_epoch"
