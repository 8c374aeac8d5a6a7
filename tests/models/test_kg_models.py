"""Knowledge-aware models (KG-LightGCN, KGAT) with a real KG: contract checks, equivalences,
relation weights, pruning, attention, resumable training."""

import numpy as np
import pandas as pd
import pytest
import torch
from crash_helpers import crash_after_epochs

from graphrec.config import EvalConfig, TrainConfig, model_config_from_dict
from graphrec.data.dataset import KnowledgeGraph
from graphrec.data.synthetic import random_interactions
from graphrec.errors import ConfigError
from graphrec.models import build_model
from graphrec.models.base import LossOutput
from graphrec.training import Trainer

KG_MODELS = ["kglightgcn", "kgat"]


@pytest.fixture
def kg_data():
    """random_interactions (40 users x 60 items, raw ids i0..i59) with 3 relations."""
    data = random_interactions()
    rng = np.random.default_rng(0)
    rows = []
    for item in range(data.n_items):
        rows.append((f"i{item}", "genre", f"g{item % 5}"))
        rows.append((f"i{item}", "directed_by", f"d{rng.integers(15)}"))
        if item % 3 == 0:
            rows.append((f"i{item}", "sequel", f"i{(item + 1) % data.n_items}"))
    rows.append(("d0", "born_in", "paris"))
    data.kg = KnowledgeGraph(triples=pd.DataFrame(rows, columns=["head", "relation", "tail"]))
    return data


def make(name, data, seed=0, **overrides):
    torch.manual_seed(seed)
    values = {"name": name, "embedding_dim": 8, "num_layers": 2, "kg": "dataset"}
    if name == "kgat":
        values.update(relation_dim=6, kg_batch_size=64)
    values.update(overrides)
    return build_model(
        model_config_from_dict(values), data.n_users, data.n_items, data.train, data=data
    )


def a_batch(data, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    coo = data.train.tocoo()
    idx = torch.randint(coo.nnz, (size,), generator=g)
    return (
        torch.as_tensor(coo.row, dtype=torch.long)[idx],
        torch.as_tensor(coo.col, dtype=torch.long)[idx],
        torch.randint(data.n_items, (size,), generator=g),
    )


# ------------------------------------------------------- contract, with a KG
@pytest.mark.parametrize("name", KG_MODELS)
class TestWithKG:
    def test_graph_includes_the_kg(self, name, kg_data):
        model = make(name, kg_data)
        assert model.ckg.n_relations == 4 and model.ckg.n_entities == 60 + 5 + 15 + 1
        assert model.entity_embedding.weight.shape == (21, 8)

    def test_shapes_and_scorer(self, name, kg_data):
        model = make(name, kg_data)
        users, items = model.embeddings()
        assert users.shape == (40, 8) and items.shape == (60, 8)
        torch.testing.assert_close(
            model.score(torch.tensor([1, 2])).detach(), model.scorer()(torch.tensor([1, 2]))
        )

    def test_every_parameter_gets_a_gradient(self, name, kg_data):
        model = make(name, kg_data)
        out = model.loss(*a_batch(kg_data))
        assert isinstance(out, LossOutput) and torch.isfinite(out.loss)
        out.loss.backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert model.entity_embedding.weight.grad.abs().sum() > 0

    def test_the_kg_changes_the_embeddings(self, name, kg_data):
        with_kg = make(name, kg_data, seed=2)
        without = make(name, kg_data, seed=2, kg=None)
        state = {
            k: v
            for k, v in with_kg.state_dict().items()
            if k in without.state_dict() and v.shape == without.state_dict()[k].shape
        }
        without.load_state_dict(state, strict=False)
        assert not torch.allclose(with_kg.embeddings()[1], without.embeddings()[1])

    def test_checkpoint_round_trip(self, name, kg_data):
        a = make(name, kg_data, seed=1)
        if name == "kgat":
            a.relation_projection.data.normal_()
            a.update_attention()
        b = make(name, kg_data, seed=2)
        b.load_state_dict(a.state_dict())
        users = torch.arange(kg_data.n_users)
        torch.testing.assert_close(a.scorer()(users), b.scorer()(users))

    def test_resumed_run_equals_uninterrupted_run(self, name, kg_data, tmp_path):
        def trainer(run_dir):
            model = make(name, kg_data)
            cfg = TrainConfig(
                epochs=3,
                batch_size=64,
                learning_rate=0.01,
                eval_every=1,
                patience=0,
                seed=0,
                progress=False,
            )
            return Trainer(
                model, kg_data, cfg, EvalConfig(ks=[10, 20], batch_size=16), run_dir=run_dir
            )

        reference = trainer(tmp_path / "ref").fit()
        crashing = trainer(tmp_path / "run")
        with crash_after_epochs(1):
            crashing.fit()
        torch.manual_seed(99)
        resumed = trainer(tmp_path / "run").fit()
        assert resumed.test.metrics == reference.test.metrics
        assert [r["loss"] for r in resumed.history] == [r["loss"] for r in reference.history]


def test_kg_source_without_data_is_a_clear_error(kg_data):
    config = model_config_from_dict({"name": "kglightgcn", "kg": "dataset"})
    with pytest.raises(ConfigError, match="needs the dataset"):
        build_model(config, kg_data.n_users, kg_data.n_items, kg_data.train)


# ---------------------------------------------------------------- KG-LightGCN
def test_kglightgcn_without_kg_is_lightgcn(kg_data):
    model = make("kglightgcn", kg_data, seed=4, kg=None, layer_combination="sum")
    lightgcn = build_model(
        model_config_from_dict(
            {"name": "lightgcn", "embedding_dim": 8, "num_layers": 2, "layer_combination": "sum"}
        ),
        kg_data.n_users,
        kg_data.n_items,
        kg_data.train,
    )
    lightgcn.load_state_dict(model.state_dict())
    for ours, ref in zip(model.embeddings(), lightgcn.embeddings()):
        torch.testing.assert_close(ours, ref)


def dense_blocks(model):
    """Dense [T, N, N] blocks of the typed structure (tiny graphs only)."""
    s = model.structure
    n = s.size[0]
    out = torch.zeros(int(s.types.max()) + 1, n, n)
    out.index_put_((s.types, s.row, s.col), s.base, accumulate=True)
    return out


@pytest.mark.parametrize("normalization", ["joint", "per_relation"])
def test_kglightgcn_weighted_propagation_and_its_gradients_match_dense(kg_data, normalization):
    model = make("kglightgcn", kg_data, relation_weights="per_layer", normalization=normalization)
    with torch.no_grad():
        model.relation_logits.uniform_(-1, 1)
    blocks = dense_blocks(model)
    assert torch.allclose(blocks, blocks.transpose(1, 2))  # every block symmetric
    users, items = model.embeddings()
    ((users.sum(1) ** 2).sum() + items.pow(3).sum()).backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()

    x = model.ego()
    weights = model.relation_weights()
    total = x
    for layer in range(2):
        w = torch.cat([torch.ones(1), weights[layer]])
        matrix = torch.einsum("t,tij->ij", w, blocks)
        if normalization == "joint":  # blocks are 0/1; normalise by the weighted degrees
            scale = matrix.sum(1).clamp_min(1e-12).rsqrt() * (matrix.sum(1) > 0)
            matrix = scale[:, None] * matrix * scale[None, :]
        x = matrix @ x
        total = total + x
    total = total / 3
    ref_users, ref_items = total[:40], total[40:100]
    torch.testing.assert_close(users, ref_users, rtol=1e-4, atol=1e-6)
    ((ref_users.sum(1) ** 2).sum() + ref_items.pow(3).sum()).backward()
    for k, p in model.named_parameters():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-3, atol=1e-5)


def test_kglightgcn_zero_weight_equals_pruning_the_relation(kg_data):
    """With per-relation normalisation, a relation weight of 0 is exactly the KG without it."""
    full = make("kglightgcn", kg_data, seed=5, normalization="per_relation")
    with torch.no_grad():
        full.relation_logits[0, full.ckg.relation_names.index("genre")] = -80.0  # softplus -> ~0
    kept = [r for r in full.ckg.relation_names if r != "genre"]
    pruned = make("kglightgcn", kg_data, seed=5, normalization="per_relation", kg_relations=kept)
    pruned.user_embedding.load_state_dict(full.user_embedding.state_dict())
    pruned.item_embedding.load_state_dict(full.item_embedding.state_dict())
    ids = full.ckg.entity_ids.tolist()
    with torch.no_grad():
        for i, name in enumerate(pruned.ckg.entity_ids[60:].tolist()):
            pruned.entity_embedding.weight[i] = full.entity_embedding.weight[ids.index(name) - 60]
        pruned.relation_logits.copy_(
            full.relation_logits[:, [full.ckg.relation_names.index(r) for r in kept]]
        )
    for a, b in zip(full.embeddings(), pruned.embeddings()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("logit", [-3.0, 0.0, 8.0])
def test_kglightgcn_joint_weights_cannot_scale_embeddings_up(kg_data, logit):
    """Joint normalisation follows the weights: each layer has operator norm <= 1 whatever the
    w_r, so the weights cannot inflate scores around the L2 penalty; per-relation
    normalisation, normalised once, can (that is what made learned weights grow to ~3)."""

    def output_norm(normalization):
        model = make("kglightgcn", kg_data, seed=3, normalization=normalization)
        with torch.no_grad():
            model.relation_logits.fill_(logit)
            users, items = model.embeddings()
            return torch.cat([users, items]).norm(), model.ego().norm()

    joint, ego = output_norm("joint")
    assert joint <= ego
    if logit == 8.0:
        inflated, ego = output_norm("per_relation")
        assert inflated > 1.5 * ego


def test_kglightgcn_relation_weights_move(kg_data):
    model = make("kglightgcn", kg_data)
    before = model.relation_weights().detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(5):
        optimizer.zero_grad()
        model.loss(*a_batch(kg_data)).loss.backward()
        optimizer.step()
    assert (model.relation_weights() > 0).all() and not torch.allclose(
        model.relation_weights(), before
    )


def test_pruning_config_reduces_the_graph(kg_data):
    full = make("kglightgcn", kg_data)
    pruned = make("kglightgcn", kg_data, kg_score="collaborative", kg_drop_fraction=0.5)
    assert pruned.ckg.n_triples < full.ckg.n_triples
    fixed = make("kglightgcn", kg_data, relation_weights="fixed")
    assert fixed.relation_logits is None


# ------------------------------------------------------------------- KGAT
def test_kgat_attention_is_a_softmax_over_each_head(kg_data):
    model = make("kgat", kg_data)
    heads = model.edge_index[0]
    sums = torch.zeros(model.n_nodes).index_add_(0, heads, model.attention)
    has_edges = torch.bincount(heads, minlength=model.n_nodes) > 0
    torch.testing.assert_close(sums[has_edges], torch.ones(int(has_edges.sum())))
    assert (model.attention > 0).all()


def test_kgat_attention_follows_the_paper_formula(kg_data):
    model = make("kgat", kg_data)
    with torch.no_grad():
        model.relation_projection.normal_()
        model.relation_embedding.normal_()
    model.update_attention()
    ego = model.ego()
    h, t = model.edge_index
    w = model.relation_projection[model.edge_type]
    wh = torch.bmm(ego[h].unsqueeze(1), w).squeeze(1)
    wt = torch.bmm(ego[t].unsqueeze(1), w).squeeze(1)
    logits = (wt * torch.tanh(wh + model.relation_embedding[model.edge_type])).sum(-1)
    expected = torch.empty_like(logits)
    for node in torch.unique(h):
        mask = h == node
        expected[mask] = torch.softmax(logits[mask], 0)
    torch.testing.assert_close(model.attention, expected, rtol=1e-4, atol=1e-6)


def test_kgat_attention_is_refreshed_each_epoch_and_saved(kg_data):
    model = make("kgat", kg_data)
    before = model.attention.clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        model.loss(*a_batch(kg_data)).loss.backward()
        optimizer.step()
    torch.testing.assert_close(model.attention, before)  # not differentiated / changed by the loss
    model.on_epoch_start(2, torch.Generator().manual_seed(0))
    assert not torch.allclose(model.attention, before)
    assert "attention" in model.state_dict()


def test_kgat_kg_loss_is_transr(kg_data):
    model = make("kgat", kg_data, dropout=0.0)
    model.eval()  # no message dropout; the KG loss is still part of loss()
    with_kg = model.loss(*a_batch(kg_data))
    assert "kg" in with_kg.parts and with_kg.parts["kg"] > 0
    no_kg = make("kgat", kg_data, kg_weight=0.0).loss(*a_batch(kg_data))
    assert "kg" not in no_kg.parts
