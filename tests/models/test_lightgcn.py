"""LightGCN propagation: agrees with PyG's LGConv, and the custom backward is exact."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.nn import LGConv

from graphrec.config import model_config_from_dict
from graphrec.models import build_model
from graphrec.models.mf import EmbeddingRecommender
from graphrec.models.propagation import (
    SymmetricPolynomial,
    SymmetricSpMM,
    bipartite_adjacency,
    normalized_adjacency,
    propagate,
    propagate_sum,
    sparse_dense_mm,
    symmetric_normalize,
    to_torch_csr,
)


def edge_index_of(train: sp.csr_matrix) -> torch.Tensor:
    coo = train.tocoo()
    n_users = train.shape[0]
    src = np.concatenate([coo.row, coo.col + n_users])
    dst = np.concatenate([coo.col + n_users, coo.row])
    return torch.as_tensor(np.stack([src, dst]), dtype=torch.long)


@pytest.mark.parametrize("combination", ["mean", "sum"])
def test_matches_stacked_pyg_lgconv(small_data, combination):
    torch.manual_seed(0)
    config = model_config_from_dict(
        {"name": "lightgcn", "embedding_dim": 8, "num_layers": 3, "layer_combination": combination}
    )
    model = build_model(config, small_data.n_users, small_data.n_items, small_data.train)
    users, items = model.embeddings()

    ego = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    conv = LGConv(normalize=True)
    edge_index = edge_index_of(small_data.train)
    layers = [ego]
    for _ in range(3):
        layers.append(conv(layers[-1], edge_index))
    expected = torch.stack(layers).sum(0)
    if combination == "mean":
        expected = expected / 4
    torch.testing.assert_close(torch.cat([users, items]).detach(), expected, rtol=1e-5, atol=1e-6)


def test_normalisation_by_hand():
    # user 0 -- item 0, user 0 -- item 1, user 1 -- item 1
    train = sp.csr_matrix(np.array([[1, 1], [0, 1]], dtype=np.float32))
    a = symmetric_normalize(bipartite_adjacency(train)).toarray()
    # degrees: u0=2, u1=1, i0=1, i1=2
    expected = np.zeros((4, 4))
    expected[0, 2] = expected[2, 0] = 1 / np.sqrt(2 * 1)
    expected[0, 3] = expected[3, 0] = 1 / np.sqrt(2 * 2)
    expected[1, 3] = expected[3, 1] = 1 / np.sqrt(1 * 2)
    np.testing.assert_allclose(a, expected, rtol=1e-6)


def test_isolated_nodes_get_zero_rows():
    train = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]], dtype=np.float32))
    adjacency = normalized_adjacency(train)
    out = torch.sparse.mm(adjacency, torch.ones(5, 2))
    assert out[1].abs().sum() == 0 and out[3].abs().sum() == 0 and out[4].abs().sum() == 0


def test_custom_backward_equals_autograd(small_data):
    adjacency = normalized_adjacency(small_data.train)
    dense = adjacency.to_dense()  # tiny test graph only
    x = torch.randn(dense.shape[0], 4, requires_grad=True)
    weight = torch.randn(dense.shape[0], 4)
    (propagate(adjacency, propagate(adjacency, x)) * weight).sum().backward()
    grad_custom = x.grad.clone()
    x.grad = None
    ((dense @ (dense @ x)) * weight).sum().backward()
    torch.testing.assert_close(grad_custom, x.grad, rtol=1e-5, atol=1e-6)


def test_gradcheck_double_precision():
    rng = np.random.default_rng(0)
    upper = sp.random(6, 6, density=0.4, random_state=rng, dtype=np.float64)
    sym = (upper + upper.T).tocsr()
    adjacency = torch.sparse_csr_tensor(
        torch.as_tensor(sym.indptr, dtype=torch.long),
        torch.as_tensor(sym.indices, dtype=torch.long),
        torch.as_tensor(sym.data),
        size=sym.shape,
        check_invariants=True,
    )
    x = torch.randn(6, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: SymmetricSpMM.apply(adjacency, t), (x,))


def test_adjacency_is_sparse(small_data):
    adjacency = normalized_adjacency(small_data.train)
    assert adjacency.layout == torch.sparse_csr
    assert adjacency._nnz() == 2 * small_data.train.nnz


def test_csr_indices_are_int32_when_they_fit(small_data):
    adjacency = normalized_adjacency(small_data.train)
    assert (
        adjacency.crow_indices().dtype == torch.int32
        and adjacency.col_indices().dtype == torch.int32
    )
    forced = to_torch_csr(
        symmetric_normalize(bipartite_adjacency(small_data.train)), index_dtype=torch.int64
    )
    assert forced.crow_indices().dtype == torch.int64
    x = torch.randn(adjacency.shape[0], 5)
    assert torch.equal(sparse_dense_mm(adjacency, x), sparse_dense_mm(forced, x))


def test_sparse_dense_mm_is_bitwise_torch_sparse_mm(small_data):
    adjacency = normalized_adjacency(small_data.train)
    x = torch.randn(adjacency.shape[0], 7)
    out = sparse_dense_mm(adjacency, x)
    assert torch.equal(out, torch.sparse.mm(adjacency, x))
    assert not torch.isnan(out).any()  # the uninitialised result buffer is fully overwritten
    # non-contiguous input and float64 (falls back to torch.sparse.mm) give the same products
    wide = torch.randn(adjacency.shape[0], 14)[:, ::2]
    torch.testing.assert_close(
        sparse_dense_mm(adjacency, wide), torch.sparse.mm(adjacency, wide.contiguous())
    )


@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_propagate_sum_equals_layer_loop_values_and_gradients(small_data, num_layers):
    adjacency = normalized_adjacency(small_data.train)
    weight = torch.randn(adjacency.shape[0], 4)
    x = torch.randn(adjacency.shape[0], 4, requires_grad=True)
    fused = propagate_sum(adjacency, x, num_layers)
    (fused * weight).sum().backward()
    grad_fused = x.grad.clone()
    x.grad = None
    total, layer = x, x
    for _ in range(num_layers):
        layer = propagate(adjacency, layer)
        total = total + layer
    (total * weight).sum().backward()
    assert torch.equal(fused, total)  # same products, same summation order
    torch.testing.assert_close(grad_fused, x.grad, rtol=1e-6, atol=1e-7)
    dense = adjacency.to_dense()  # tiny test graph only
    poly = sum(torch.linalg.matrix_power(dense, layer) for layer in range(num_layers + 1))
    torch.testing.assert_close(grad_fused, poly @ weight, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        assert torch.equal(propagate_sum(adjacency, x, num_layers), fused)


def test_symmetric_polynomial_gradcheck_double_precision():
    rng = np.random.default_rng(1)
    upper = sp.random(7, 7, density=0.4, random_state=rng, dtype=np.float64)
    sym = (upper + upper.T).tocsr()
    adjacency = torch.sparse_csr_tensor(
        torch.as_tensor(sym.indptr, dtype=torch.int32),
        torch.as_tensor(sym.indices, dtype=torch.int32),
        torch.as_tensor(sym.data),
        size=sym.shape,
    )
    x = torch.randn(7, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: SymmetricPolynomial.apply(adjacency, t, 3), (x,))


@pytest.mark.parametrize("combination", ["mean", "sum"])
def test_fast_loss_equals_the_generic_embedding_loss(small_data, combination):
    """LightGCN.loss (one gather per table) = EmbeddingRecommender.loss (per-table lookups)."""
    torch.manual_seed(3)
    config = model_config_from_dict(
        {
            "name": "lightgcn",
            "embedding_dim": 8,
            "num_layers": 3,
            "layer_combination": combination,
            "l2_weight": 0.01,
        }
    )
    model = build_model(config, small_data.n_users, small_data.n_items, small_data.train)
    gen = torch.Generator().manual_seed(0)
    users = torch.randint(small_data.n_users, (64,), generator=gen)  # duplicates on purpose
    pos = torch.randint(small_data.n_items, (64,), generator=gen)
    neg = torch.randint(small_data.n_items, (64,), generator=gen)
    fast = model.loss(users, pos, neg)
    fast.loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    generic = EmbeddingRecommender.loss(model, users, pos, neg)
    generic.loss.backward()
    torch.testing.assert_close(fast.loss, generic.loss, rtol=1e-6, atol=1e-7)
    as_floats = {k: float(v) for k, v in generic.parts.items()}
    assert {k: float(v) for k, v in fast.parts.items()} == pytest.approx(as_floats, rel=1e-6)
    for mine, theirs in zip(grads, (p.grad for p in model.parameters())):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-8)
