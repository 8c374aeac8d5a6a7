"""The model contract suite of tests/models/test_contract.py, run on `aligned` around several backbones.

The suite's test functions are reused unchanged; only its model factory ``make`` is
swapped for one that passes the dataset's text views (the suite's own factory builds
models without a dataset, which `aligned` needs for its texts).
"""

import importlib.util
from pathlib import Path

import pytest
import torch

from alignment.model import AlignedRecommender
from graphrec.config import model_config_from_dict

_SUITE_PATH = Path(__file__).resolve().parents[1] / "models" / "test_contract.py"
_spec = importlib.util.spec_from_file_location("graphrec_contract_suite_for_alignment", _SUITE_PATH)
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)

VARIANTS = {
    "lightgcn-contrastive": {
        "backbone": {"name": "lightgcn", "num_layers": 2},
        "objective": "contrastive",
    },
    "lightgcn-generative": {
        "backbone": {"name": "lightgcn", "num_layers": 2},
        "objective": "generative",
        "mask_ratio": 0.2,
    },
    "mf-contrastive-fused": {
        "backbone": {"name": "mf"},
        "objective": "contrastive",
        "fusion_weight": 0.3,
        "text_bpr_weight": 0.5,
    },
    "sgl-contrastive": {"backbone": {"name": "sgl"}, "objective": "contrastive"},
}


@pytest.fixture(params=list(VARIANTS), autouse=True)
def aligned_factory(request, monkeypatch, topic_views):
    variant = VARIANTS[request.param]

    def make(name, data, seed=0, **overrides):
        torch.manual_seed(seed)
        config = model_config_from_dict({"name": name, "embedding_dim": 16, **variant, **overrides})
        return AlignedRecommender(
            data.n_users, data.n_items, config, data.train, text_views=topic_views
        )

    monkeypatch.setattr(suite, "make", make)
    return request.param


_tests = {
    name: fn for name, fn in vars(suite.TestModelContract).items() if name.startswith("test_")
}
TestAlignedContract = pytest.mark.parametrize("name", ["aligned"])(
    type("TestAlignedContract", (), _tests)
)


def test_the_suite_is_the_real_one():
    assert len(_tests) >= 8 and "test_checkpoint_round_trip" in _tests
