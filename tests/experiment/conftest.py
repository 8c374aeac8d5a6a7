"""Shared fixtures of the experiment, search and report tests: small and fast (dim 16, a few epochs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
#: Screenshots and pages kept as test artefacts (runs/ is git-ignored).
ARTIFACTS = REPO / "runs" / "test-artifacts"

FAST_DEFAULTS = {
    "data": {"dataset": "ml-latest-small-tmdb"},
    "train": {
        "epochs": 4,
        "batch_size": 2048,
        "learning_rate": 0.005,
        "eval_every": 2,
        "patience": 0,
        "num_threads": 1,
        "progress": False,
    },
    "eval": {"ks": [10, 20], "batch_size": 1024},
}


def write_experiment(
    path: Path, out_dir: Path, variants: dict, seeds=(1, 2), baseline="mf", **extra
) -> Path:
    """Write an experiment YAML file with the fast defaults."""
    tree = {
        "name": "exp",
        "out_dir": str(out_dir),
        "seeds": list(seeds),
        "baseline": baseline,
        "defaults": FAST_DEFAULTS,
        "variants": variants,
        **extra,
    }
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


TWO_VARIANTS = {
    "mf": {"label": "MF", "model": {"name": "mf", "embedding_dim": 16}},
    "lightgcn": {
        "label": "LightGCN",
        "model": {"name": "lightgcn", "embedding_dim": 16, "num_layers": 1},
    },
}


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # the machine is shared: keep the tests on one intra-op thread
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def ml_data():
    from graphrec import datasets

    return datasets.load("ml-latest-small-tmdb")


@pytest.fixture(scope="session")
def finished_experiment(tmp_path_factory, ml_data):
    """A finished 2 variants x 2 seeds experiment (shared by the experiment and report tests)."""
    from graphrec.experiment import Experiment

    root = tmp_path_factory.mktemp("experiment")
    path = write_experiment(root / "exp.yaml", root / "out", TWO_VARIANTS)
    exp = Experiment.from_yaml(path)
    result = exp.run(data=ml_data, quiet=True)
    return exp, result, path
