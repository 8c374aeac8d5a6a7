"""The synthetic power-law graphs of benchmarks/scaling.py, and a LightGCN epoch on one."""

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from graphrec.config import EvalConfig, TrainConfig
from graphrec.data.synthetic import power_law_interactions
from graphrec.evaluation import Evaluator
from graphrec.models import LightGCN, LightGCNConfig, propagation
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


def _scaling_module():
    spec = importlib.util.spec_from_file_location(
        "scaling_benchmark", Path(__file__).resolve().parents[2] / "benchmarks" / "scaling.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _small_trainer(data):
    torch.manual_seed(0)
    model = LightGCN(
        300, 90, LightGCNConfig(embedding_dim=8, num_layers=3, layer_combination="sum"), data.train
    )
    config = TrainConfig(epochs=1, batch_size=100, num_threads=1, progress=False)
    return Trainer(model, data, config, EvalConfig(ks=[20], metrics=["recall"]), run_dir=None)


def test_scaling_phase_clock_times_the_real_epoch_without_changing_it():
    scaling = _scaling_module()
    data = power_law_interactions(300, 90, 3000, seed=1)
    timed, plain = _small_trainer(data), _small_trainer(data)
    product = propagation.sparse_dense_mm
    clock = scaling.PhaseClock()
    clock.install(timed, propagation)
    start = time.perf_counter()
    record = timed._train_epoch(progress=False)
    seconds = time.perf_counter() - start
    clock.uninstall()
    assert propagation.sparse_dense_mm is product
    assert record == plain._train_epoch(progress=False)  # same batches, loss and parts
    for ours, theirs in zip(timed.model.parameters(), plain.model.parameters()):
        assert torch.equal(ours, theirs)
    phases = clock.report(seconds)
    assert set(phases) == set(scaling.PHASES) and min(phases.values()) >= 0
    assert clock.batches == 30 and phases["forward_products"] > 0 < phases["backward_products"]
    assert sum(phases.values()) == pytest.approx(seconds, abs=0.01)
    limited, trainer = scaling.PhaseClock(limit=4), _small_trainer(data)
    limited.install(trainer, propagation)
    start = time.perf_counter()
    trainer._train_epoch(progress=False)
    figures = scaling.epoch_figures(limited, [time.perf_counter() - start], 30)
    limited.uninstall()
    assert limited.batches == 4 and figures["extrapolated_from_batches"] == 4
    assert figures["epoch_seconds"] > figures["measured_seconds"]
