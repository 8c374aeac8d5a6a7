"""Text-native models: `alpharec` (items are projected text) and `text_init` (backbones initialised from text)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from alignment.alpharec import AlphaRec, candidate_logits, mean_item_rows
from alignment.textinit import text_initial_tables
from graphrec.config import model_config_from_dict
from graphrec.errors import ConfigError
from graphrec.models import MODELS, available_models, build_model

REPO = Path(__file__).resolve().parents[2]

_SUITE_PATH = REPO / "tests" / "models" / "test_contract.py"
_spec = importlib.util.spec_from_file_location(
    "graphrec_contract_suite_for_text_native", _SUITE_PATH
)
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)

VARIANTS = {
    "alpharec": [{}, {"num_layers": 0}],
    "text_init": [
        {"backbone": {"name": "lightgcn", "num_layers": 2, "embedding_dim": 16}},
        {"backbone": {"name": "simgcl", "embedding_dim": 16}, "mix": 0.5},
    ],
}


def build(config, data, item_embeddings):
    cls = MODELS[config.name]
    return cls(data.n_users, data.n_items, config, data.train, item_embeddings=item_embeddings)


@pytest.fixture(params=[0, 1], ids=["variant0", "variant1"])
def text_native_factory(request, monkeypatch, topic_views):
    def make(name, data, seed=0, **overrides):
        torch.manual_seed(seed)
        sizes = {"embedding_dim": 16, "hidden_dim": 32} if name == "alpharec" else {}
        config = model_config_from_dict(
            {"name": name, **sizes, **VARIANTS[name][request.param], **overrides}
        )
        return build(config, data, topic_views.item)

    monkeypatch.setattr(suite, "make", make)
    return request.param


_tests = {
    name: fn for name, fn in vars(suite.TestModelContract).items() if name.startswith("test_")
}
TestTextNativeContract = pytest.mark.usefixtures("text_native_factory")(
    pytest.mark.parametrize("name", list(VARIANTS))(type("TestTextNativeContract", (), _tests))
)


def test_the_contract_suite_is_the_real_one():
    assert len(_tests) >= 8 and "test_checkpoint_round_trip" in _tests


def test_registered_through_the_entry_point():
    assert {"alpharec", "text_init"} <= set(available_models())


def test_mean_item_rows_is_the_users_mean_and_zero_without_items():
    train = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 2, 0]], dtype=np.float32))
    items = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_allclose(mean_item_rows(train, items), [[2.0, 3.0], [0.0, 0.0], [2.0, 3.0]])


def trained_alpharec(topics, topic_views, cold: np.ndarray, steps: int = 150) -> AlphaRec:
    """AlphaRec trained by full-batch InfoNCE on the topic data with the ``cold`` items' interactions removed."""
    keep = np.ones(topics.n_items, dtype=np.float32)
    keep[cold] = 0.0
    train = sp.csr_matrix(topics.train @ sp.diags(keep))
    train.eliminate_zeros()
    torch.manual_seed(0)
    config = model_config_from_dict(
        {"name": "alpharec", "embedding_dim": 16, "hidden_dim": 32, "num_layers": 1}
    )
    model = AlphaRec(
        topics.n_users, topics.n_items, config, train, item_embeddings=topic_views.item
    )
    coo = train.tocoo()
    users, pos = (
        torch.as_tensor(coo.row, dtype=torch.long),
        torch.as_tensor(coo.col, dtype=torch.long),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        pick = torch.randint(len(users), (256,), generator=g)
        optimizer.zero_grad()
        model.loss(
            users[pick], pos[pick], torch.randint(topics.n_items, (256,), generator=g)
        ).loss.backward()
        optimizer.step()
    return model


def test_alpharec_ranks_cold_items_zero_shot_by_their_text(topics, topic_views):
    item_topic = np.asarray(topics.meta["item_topic"])
    user_topic = np.asarray(topics.meta["user_topic"])
    cold = np.arange(0, topics.n_items, 7)  # items of every topic, never seen in training
    model = trained_alpharec(topics, topic_views, cold)
    scores = model.scorer()(torch.arange(topics.n_users))[:, torch.as_tensor(cold)]
    best = cold[scores.argmax(dim=1).numpy()]
    # the user's own topic among 4: chance is 25%
    assert (item_topic[best] == user_topic).mean() > 0.8
    # score_items on new texts equals the in-graph scores of the cold (edge-less) items
    direct = model.score_items(torch.arange(5), torch.as_tensor(topic_views.item[cold]))
    torch.testing.assert_close(
        direct.detach(), model.scorer()(torch.arange(5))[:, torch.as_tensor(cold)]
    )


@pytest.mark.parametrize("seed", range(4))
def test_alpharec_infonce_over_distinct_candidates_equals_the_masked_2b_candidate_loss(seed):
    """One column per distinct candidate, weighted by its copies, is the paper's ``B × 2B`` loss."""
    g = torch.Generator().manual_seed(seed)
    n_items, batch = 12, 20  # far fewer items than candidates: many copies of each
    items = torch.randn(n_items, 6, generator=g, dtype=torch.float64, requires_grad=True)
    users = torch.randn(batch, 6, generator=g, dtype=torch.float64, requires_grad=True)
    pos = torch.randint(n_items, (batch,), generator=g)
    neg = torch.randint(n_items, (batch,), generator=g)
    # reference: every candidate its own column, copies of the row's positive masked but its own
    candidates = torch.cat([pos, neg])
    rows = torch.arange(batch)
    duplicate = candidates[None, :] == pos[:, None]
    duplicate[rows, rows] = False
    reference = F.cross_entropy(
        (users @ items[candidates].T).masked_fill(duplicate, float("-inf")), rows
    )
    logits, target = candidate_logits(users, items, pos, neg)
    assert logits.shape == (batch, len(torch.unique(candidates)))
    loss = F.cross_entropy(logits, target)
    torch.testing.assert_close(loss, reference)
    for got, want in zip(
        torch.autograd.grad(loss, [users, items]),
        torch.autograd.grad(reference, [users, items]),
        strict=True,
    ):
        torch.testing.assert_close(got, want)


def test_alpharec_needs_texts_and_checks_their_shape(topics):
    config = model_config_from_dict({"name": "alpharec"})
    with pytest.raises(ConfigError, match="item texts"):
        build_model(config, topics.n_users, topics.n_items, topics.train)
    with pytest.raises(ConfigError, match="shape"):
        AlphaRec(
            topics.n_users, topics.n_items, config, topics.train, item_embeddings=np.zeros((3, 8))
        )
    with pytest.raises(ConfigError, match="temperature"):
        model_config_from_dict({"name": "alpharec", "temperature": 0.0}).validate()


def test_text_initial_tables_are_principal_components_and_user_means(topics, topic_views):
    users, items = text_initial_tables(topics.train, topic_views.item, 8)
    z = topic_views.item - topic_views.item.mean(axis=0)
    # the projection keeps the top-8 variance directions: its covariance is diagonal, decreasing
    cov = np.cov(items.T)
    np.testing.assert_allclose(cov, np.diag(np.diag(cov)), atol=1e-4)
    assert np.all(np.diff(np.diag(cov)) <= 1e-6)
    assert np.diag(cov).sum() <= np.var(z, axis=0, ddof=1).sum() + 1e-4
    np.testing.assert_allclose(users, mean_item_rows(topics.train, items), rtol=1e-5)
    with pytest.raises(ConfigError, match="fewer than"):
        text_initial_tables(topics.train, topic_views.item[:, :4], 8)


def test_text_init_with_mix_zero_is_the_bare_backbone(topics, topic_views):
    section = {"name": "lightgcn", "embedding_dim": 16, "num_layers": 2}
    torch.manual_seed(5)
    bare = build_model(
        model_config_from_dict(section), topics.n_users, topics.n_items, topics.train
    )
    torch.manual_seed(5)
    wrapped = build(
        model_config_from_dict({"name": "text_init", "backbone": section, "mix": 0.0}),
        topics,
        topic_views.item,
    )
    users = torch.arange(10)
    torch.testing.assert_close(bare.scorer()(users), wrapped.scorer()(users))


def test_text_init_starts_with_topic_structure_and_the_backbones_scale(topics, topic_views):
    section = {"name": "lightgcn", "embedding_dim": 16, "num_layers": 2}
    torch.manual_seed(5)
    bare = build_model(
        model_config_from_dict(section), topics.n_users, topics.n_items, topics.train
    )
    model = build(
        model_config_from_dict({"name": "text_init", "backbone": section}), topics, topic_views.item
    )
    table = model.backbone.item_embedding.weight.detach()
    assert float(table.std()) == pytest.approx(
        float(bare.item_embedding.weight.detach().std()), rel=0.03
    )
    # before any training, each user's top item is of their topic far more often than chance (25%)
    item_topic = np.asarray(topics.meta["item_topic"])
    best = model.scorer()(torch.arange(topics.n_users)).argmax(dim=1).numpy()
    assert (item_topic[best] == np.asarray(topics.meta["user_topic"])).mean() > 0.7


def test_text_init_refuses_backbones_without_tables(topics, topic_views):
    config = model_config_from_dict({"name": "text_init", "backbone": {"name": "ease"}})
    with pytest.raises(ConfigError, match="embedding tables"):
        build(config, topics, topic_views.item)
    with pytest.raises(ConfigError, match="cannot be"):
        model_config_from_dict({"name": "text_init", "backbone": {"name": "text_init"}})
