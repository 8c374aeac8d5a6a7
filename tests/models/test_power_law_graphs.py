"""The synthetic power-law graphs of benchmarks/scaling.py, and a LightGCN epoch on one."""

import numpy as np
import pytest
import torch

from graphrec.config import EvalConfig, TrainConfig
from graphrec.data.synthetic import power_law_interactions
from graphrec.evaluation import Evaluator
from graphrec.models import LightGCN, LightGCNConfig
from graphrec.training import Trainer


def test_power_law_graph_counts_split_and_skew():
    data = power_law_interactions(400, 120, 5000, seed=3)
    assert data.train.nnz == 5000 and data.test.nnz == 250
    assert data.train.multiply(data.test).nnz == 0  # disjoint splits
    assert data.train.has_canonical_format and data.test.has_canonical_format
    per_user = np.diff(data.train.indptr) + np.diff(data.test.indptr)
    assert per_user.max() <= 60  # at most half of the catalogue per user
    popularity = np.sort(np.bincount(data.train.indices, minlength=120))[::-1]
    assert popularity[:12].sum() > 2 * popularity[-12:].sum() * 1.5  # a heavy head, not uniform
    again = power_law_interactions(400, 120, 5000, seed=3)
    assert (again.train != data.train).nnz == 0 and (again.test != data.test).nnz == 0
    with pytest.raises(ValueError, match="do not fit"):
        power_law_interactions(10, 10, 1000)


def test_lightgcn_epoch_and_blocked_evaluation_on_a_power_law_graph():
    data = power_law_interactions(300, 90, 3000, seed=1)
    torch.manual_seed(0)
    model = LightGCN(
        300, 90, LightGCNConfig(embedding_dim=8, num_layers=3, layer_combination="sum"), data.train
    )
    trainer = Trainer(
        model,
        data,
        TrainConfig(epochs=1, batch_size=100, num_threads=1, progress=False),
        EvalConfig(ks=[20], metrics=["recall", "ndcg"]),
        run_dir=None,
    )
    first = trainer._train_epoch(progress=False)
    second = trainer._train_epoch(progress=False)
    assert np.isfinite(first["loss"]) and second["loss"] < first["loss"]
    users = np.flatnonzero(np.diff(data.test.indptr) > 0)[:50]
    small = Evaluator(
        ks=(20,), metrics=("recall",), beyond_accuracy=False, max_block_mb=5 * 90 * 4 / 2**20
    )
    big = Evaluator(ks=(20,), metrics=("recall",), beyond_accuracy=False)
    a = small.evaluate(model.scorer(), data.test, exclude=[data.train], users=users)
    b = big.evaluate(model.scorer(), data.test, exclude=[data.train], users=users)
    assert a.meta["rows_per_block"] == 5 and a.num_users == len(users)
    assert a.metrics == b.metrics
