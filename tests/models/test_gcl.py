"""SGL, SimGCL and XSimGCL: InfoNCE, views, noise, equivalences and resumable randomness."""

import pytest
import torch
from crash_helpers import crash_after_epochs

from graphrec.config import EvalConfig, TrainConfig, model_config_from_dict
from graphrec.errors import ConfigError
from graphrec.models import build_model
from graphrec.models.losses import info_nce, l2_parameters
from graphrec.training import Trainer

GCL = ["sgl", "simgcl", "xsimgcl"]


def make(name, data, seed=0, **overrides):
    torch.manual_seed(seed)
    config = model_config_from_dict(
        {"name": name, "embedding_dim": 8, "num_layers": 2, **overrides}
    )
    return build_model(config, data.n_users, data.n_items, data.train)


def reference_info_nce(a, b, t):
    a = torch.nn.functional.normalize(a, dim=-1)
    b = torch.nn.functional.normalize(b, dim=-1)
    logits = a @ b.T / t
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(a)))


# ----------------------------------------------------------------- InfoNCE
@pytest.mark.parametrize("temperature", [0.2, 1.0, 0.01])
def test_info_nce_matches_cross_entropy_and_its_gradient(temperature):
    torch.manual_seed(0)
    a = torch.randn(50, 6, requires_grad=True)
    b = torch.randn(50, 6, requires_grad=True)
    ours = info_nce(a, b, temperature)
    ours.backward()
    ga, gb = a.grad.clone(), b.grad.clone()
    a.grad = b.grad = None
    ref = reference_info_nce(a, b, temperature)
    ref.backward()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ga, a.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gb, b.grad, rtol=1e-4, atol=1e-6)


def test_info_nce_over_all_candidates_matches_cross_entropy():
    torch.manual_seed(1)
    everything = torch.randn(30, 6, requires_grad=True)
    anchors = torch.randn(8, 6)
    rows = torch.tensor([3, 7, 0, 29, 12, 5, 18, 21])
    ours = info_nce(anchors, everything[rows], 0.3, candidates=everything)
    a = torch.nn.functional.normalize(anchors, dim=-1)
    b = torch.nn.functional.normalize(everything, dim=-1)
    ref = torch.nn.functional.cross_entropy(a @ b.T / 0.3, rows)
    torch.testing.assert_close(ours, ref)
    assert torch.autograd.gradcheck(
        lambda e: info_nce(anchors.double(), e[rows], 0.3, candidates=e),
        (everything.detach().double().requires_grad_(),),
    )


def test_cl_negatives_all_contrasts_against_every_node(small_data):
    model = make("simgcl", small_data, cl_negatives="all")
    view1, view2 = torch.randn(2, small_data.n_users + small_data.n_items, 8).unbind(0)
    users, items = torch.tensor([0, 2]), torch.tensor([1, 4, 6])
    u2, i2 = model.split(view2)
    expected = info_nce(model.split(view1)[0][users], u2[users], 0.2, candidates=u2) + info_nce(
        model.split(view1)[1][items], i2[items], 0.2, candidates=i2
    )
    torch.testing.assert_close(model.contrast(view1, view2, users, items), expected)
    batch_only = make("simgcl", small_data).contrast(view1, view2, users, items)
    assert not torch.allclose(batch_only, expected)


def test_info_nce_gradcheck_double():
    a = torch.randn(7, 3, dtype=torch.double, requires_grad=True)
    b = torch.randn(7, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: info_nce(x, y, 0.5), (a, b))


def test_info_nce_identical_views_with_orthogonal_rows_is_small():
    views = torch.eye(8)
    assert float(info_nce(views, views, 0.05)) < 1e-6


def test_l2_parameters_is_sum_of_squares(small_data):
    model = make("simgcl", small_data)
    expected = sum(float(p.pow(2).sum()) for p in model.parameters())
    assert float(l2_parameters(model)) == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- equivalences
@pytest.mark.parametrize("name", GCL)
def test_clean_embeddings_equal_lightgcn(name, small_data):
    overrides = {"include_ego": True} if name == "xsimgcl" else {}
    model = make(name, small_data, seed=3, layer_combination="sum", **overrides)
    lightgcn = make("lightgcn", small_data, seed=3, layer_combination="sum")
    lightgcn.load_state_dict(model.state_dict())
    for ours, ref in zip(model.embeddings(), lightgcn.embeddings()):
        torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("name", ["sgl", "simgcl"])
def test_without_contrast_the_loss_is_lightgcn_bpr(name, small_data):
    model = make(name, small_data, seed=1, cl_weight=0.0)
    lightgcn = make("lightgcn", small_data, seed=1)
    lightgcn.load_state_dict(model.state_dict())
    model.set_l2_weight(1e-3)
    lightgcn.set_l2_weight(1e-3)
    users, pos, neg = (
        torch.tensor([0, 1, 2, 2]),
        torch.tensor([3, 4, 5, 6]),
        torch.tensor([7, 8, 9, 10]),
    )
    torch.testing.assert_close(
        model.loss(users, pos, neg).loss, lightgcn.loss(users, pos, neg).loss
    )


def test_exclude_ego_means_layers_one_to_l(small_data):
    model = make("simgcl", small_data, include_ego=False, layer_combination="mean")
    layers = model.encode()
    torch.testing.assert_close(model.combine(layers), (layers[1] + layers[2]) / 2)


# ---------------------------------------------------------------------- SGL
def test_sgl_edge_dropout_keeps_the_right_number_of_edges(small_data):
    model = make("sgl", small_data, drop_ratio=0.25)
    view = model._edge_dropped(torch.Generator().manual_seed(0))
    nnz = small_data.train.nnz
    assert view._nnz() == 2 * round(nnz * 0.75)
    dense = view.to_dense()
    torch.testing.assert_close(dense, dense.T)  # symmetric: reuses SymmetricSpMM
    # re-normalised: D^-1/2 A D^-1/2 of the kept graph
    binary = (dense > 0).float()
    degree = binary.sum(1)
    inv = torch.where(degree > 0, degree.rsqrt(), torch.zeros_like(degree))
    torch.testing.assert_close(dense, inv[:, None] * binary * inv[None, :])


def test_sgl_node_dropout_removes_all_edges_of_dropped_nodes(small_data):
    model = make("sgl", small_data, augmentation="nd", drop_ratio=0.5)
    view = model._node_dropped(torch.Generator().manual_seed(1)).to_dense()
    degree = (view > 0).sum(1)
    isolated_users = int((degree[: small_data.n_users] == 0).sum())
    assert isolated_users >= small_data.n_users // 2


def test_sgl_random_walk_has_one_graph_per_layer(small_data):
    model = make("sgl", small_data, augmentation="rw", num_layers=3)
    model.on_epoch_start(1, torch.Generator().manual_seed(0))
    view1, view2 = model.views()
    assert isinstance(view1, list) and len(view1) == 3
    assert not torch.equal(view1[0].to_dense(), view1[1].to_dense())


def test_sgl_views_are_redrawn_each_epoch_from_the_trainer_generator(small_data):
    model = make("sgl", small_data)
    g = torch.Generator().manual_seed(5)
    model.on_epoch_start(1, g)
    first = [v.to_dense() for v in model.views()]
    model.on_epoch_start(2, g)
    second = [v.to_dense() for v in model.views()]
    assert not torch.equal(first[0], second[0]) and not torch.equal(first[0], first[1])
    again = make("sgl", small_data)
    again.on_epoch_start(1, torch.Generator().manual_seed(5))
    torch.testing.assert_close(first[0], again.views()[0].to_dense())


def test_sgl_rlmrec_views_drop_each_direction_independently_without_renormalising(small_data):
    model = make("sgl", small_data, views="rlmrec", drop_ratio=0.3)
    model.on_epoch_start(1, torch.Generator().manual_seed(0))
    full = model.adjacency.to_dense()
    view, transposed = (m.to_dense() for m in model._batch_view(torch.device("cpu")))
    torch.testing.assert_close(transposed, view.T)
    kept = view != 0
    torch.testing.assert_close(view[kept], full[kept])  # the normalised values, not re-normalised
    assert not (kept & (full == 0)).any()
    share = float(kept.sum() / (full != 0).sum())
    assert 0.6 < share < 0.8
    assert not torch.equal(kept, kept.T)  # the two directions are drawn independently
    again = (m.to_dense() for m in model._batch_view(torch.device("cpu")))
    assert not torch.equal(next(again), view)  # redrawn per batch


def test_sgl_rlmrec_view_gradient_is_the_transposes(small_data):
    model = make("sgl", small_data, views="rlmrec", drop_ratio=0.3)
    model.on_epoch_start(1, torch.Generator().manual_seed(0))
    view = model._batch_view(torch.device("cpu"))
    layers = model._encode_directed(view)
    (layers[-1] ** 2).sum().backward()
    grads = [p.grad.clone() for p in (model.user_embedding.weight, model.item_embedding.weight)]
    model.zero_grad()
    dense = view[0].to_dense()
    x = model.ego()
    for _ in range(model.num_layers):
        x = dense @ x
    (x**2).sum().backward()
    for ours, p in zip(grads, (model.user_embedding.weight, model.item_embedding.weight)):
        torch.testing.assert_close(ours, p.grad, rtol=1e-4, atol=1e-6)


def test_sgl_rlmrec_views_need_edge_dropout():
    with pytest.raises(ConfigError, match="views=rlmrec"):
        model_config_from_dict({"name": "sgl", "views": "rlmrec", "augmentation": "nd"})


def test_sgl_config_rejects_bad_ratio():
    with pytest.raises(ConfigError, match="drop_ratio"):
        model_config_from_dict({"name": "sgl", "drop_ratio": 1.0})


# ------------------------------------------------------------------ SimGCL
def test_simgcl_noise_has_norm_eps_and_spares_layer_zero(small_data):
    model = make("simgcl", small_data, eps=0.3)
    model.on_epoch_start(1, torch.Generator().manual_seed(0))
    noisy = model.encode(noise_eps=0.3)
    torch.testing.assert_close(noisy[0], model.ego())
    from graphrec.models.propagation import propagate

    clean_next = propagate(model.adjacency, noisy[0])
    delta = (noisy[1] - clean_next).norm(dim=1)
    nonzero = clean_next.abs().sum(1) > 0
    torch.testing.assert_close(
        delta[nonzero], torch.full_like(delta[nonzero], 0.3), rtol=1e-4, atol=1e-5
    )
    # the noise points into the same orthant as the embedding
    assert ((noisy[1] - clean_next) * torch.sign(clean_next) >= 0).all()


def test_simgcl_noise_differs_between_views_and_is_seeded(small_data):
    a = make("simgcl", small_data)
    a.on_epoch_start(1, torch.Generator().manual_seed(0))
    v1, v2 = a.encode(noise_eps=0.1)[-1], a.encode(noise_eps=0.1)[-1]
    assert not torch.equal(v1, v2)
    b = make("simgcl", small_data)
    b.on_epoch_start(1, torch.Generator().manual_seed(0))
    torch.testing.assert_close(v1, b.encode(noise_eps=0.1)[-1])


def test_xsimgcl_contrasts_final_with_layer_l_star(small_data, monkeypatch):
    model = make("xsimgcl", small_data, num_layers=3, cl_layer=2)
    seen = {}
    original = model.contrast

    def spy(view1, view2, users, items):
        seen["views"] = (view1, view2)
        return original(view1, view2, users, items)

    monkeypatch.setattr(model, "contrast", spy)
    model.on_epoch_start(1, torch.Generator().manual_seed(0))
    model.loss(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5]))
    model.on_epoch_start(1, torch.Generator().manual_seed(0))
    layers = model.encode(noise_eps=model.config.eps)
    torch.testing.assert_close(seen["views"][0], model.combine(layers))
    torch.testing.assert_close(seen["views"][1], layers[2])


def test_xsimgcl_cl_layer_is_validated():
    with pytest.raises(ConfigError, match="cl_layer"):
        model_config_from_dict({"name": "xsimgcl", "num_layers": 2, "cl_layer": 3})


def test_contrast_runs_over_unique_batch_nodes(small_data, monkeypatch):
    model = make("simgcl", small_data, cl_items="pos_neg")
    users, pos, neg = torch.tensor([0, 0, 1]), torch.tensor([2, 2, 3]), torch.tensor([4, 5, 5])
    u, i = model.contrast_ids(users, pos, neg)
    assert u.tolist() == [0, 1] and i.tolist() == [2, 3, 4, 5]


# ------------------------------------------------------ trainer integration
def trainer(name, data, run_dir, epochs=4, **overrides):
    torch.manual_seed(0)
    model = make(name, data, **overrides)
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=64,
        learning_rate=0.01,
        eval_every=1,
        patience=0,
        seed=0,
        progress=False,
    )
    return Trainer(model, data, cfg, EvalConfig(ks=[10, 20], batch_size=16), run_dir=run_dir)


@pytest.mark.parametrize(
    "name, overrides", [(name, {}) for name in GCL] + [("sgl", {"views": "rlmrec"})]
)
def test_resumed_run_equals_uninterrupted_run(name, overrides, small_data, tmp_path):
    reference = trainer(name, small_data, tmp_path / "ref", **overrides).fit()
    crashing = trainer(name, small_data, tmp_path / "run", **overrides)
    with crash_after_epochs(2):
        crashing.fit()
    torch.manual_seed(123)  # a fresh process: other global RNG state
    resumed = trainer(name, small_data, tmp_path / "run", **overrides).fit()
    assert resumed.test.metrics == reference.test.metrics
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in reference.history]
