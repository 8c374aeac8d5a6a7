"""EASE, ItemKNN and most-popular against independent references on tiny matrices."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.config import model_config_from_dict
from graphrec.errors import ConfigError
from graphrec.models import build_model
from graphrec.models.ease import condition_bound, fit_precision, gram_matrix
from graphrec.models.itemknn import top_k_similarities

# 4 users x 5 items; item 4 is never interacted with
X = np.array(
    [
        [1, 1, 0, 0, 0],
        [1, 0, 1, 1, 0],
        [0, 1, 1, 0, 0],
        [1, 1, 1, 0, 0],
    ],
    dtype=np.float64,
)


def fitted(name, matrix=X, **settings):
    train = sp.csr_matrix(matrix, dtype=np.float32)
    model = build_model(model_config_from_dict({"name": name, **settings}), *train.shape, train)
    model.fit()
    return model


# ----------------------------------------------------------------------------- EASE
def test_ease_matches_the_closed_form_by_hand():
    lam = 2.0
    # X^T X + λI by hand: item counts 3, 3, 3, 1, 0 on the diagonal, co-occurrences off it
    gram = np.array(
        [
            [3, 2, 2, 1, 0],
            [2, 3, 2, 0, 0],
            [2, 2, 3, 1, 0],
            [1, 0, 1, 1, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=np.float64,
    ) + lam * np.eye(5)
    np.testing.assert_array_equal(gram, X.T @ X + lam * np.eye(5))
    p = np.linalg.inv(gram)
    expected = np.eye(5) - p / np.diag(p)[None, :]  # B = I - P diag(1/diag(P))
    model = fitted("ease", l2=lam)
    b = model.weights.numpy()
    assert np.all(np.diag(b) == 0.0)
    np.testing.assert_allclose(b, expected, atol=1e-6)
    # an unseen item has no weight either way
    assert np.all(b[4] == 0.0) and np.all(b[:, 4] == 0.0)
    users = torch.arange(4)
    np.testing.assert_allclose(model.score(users).numpy(), X @ expected, atol=1e-6)


def test_ease_columns_are_ridge_regressions_on_the_other_items():
    """Independent of the formula: B[:, j] minimises |x_j - X B_j|² + λ|B_j|² with B_jj = 0 (Steck, eq. 1)."""
    lam = 3.0
    b = fitted("ease", l2=lam).weights.numpy()
    for j in range(5):
        others = [i for i in range(5) if i != j]
        xo = X[:, others]
        ridge = np.linalg.solve(xo.T @ xo + lam * np.eye(4), xo.T @ X[:, j])
        np.testing.assert_allclose(b[others, j], ridge, atol=1e-6)


def test_ease_refuses_catalogues_over_the_memory_limit():
    train = sp.random(10, 3000, density=0.01, format="csr", random_state=0)
    config = model_config_from_dict({"name": "ease", "max_memory_gb": 0.1})
    with pytest.raises(
        ConfigError, match=r"3000 items.*0\.108 GB while fitting in float32.*max_memory_gb = 0\.1"
    ):
        build_model(config, 10, 3000, train)
    config = model_config_from_dict({"name": "ease", "max_memory_gb": 0.1, "precision": "float64"})
    with pytest.raises(ConfigError, match=r"0\.18 GB while fitting in float64"):
        build_model(config, 10, 3000, train)


def test_ease_beyond_50k_items_says_what_it_would_need():
    train = sp.random(10, 60_000, density=1e-4, format="csr", random_state=0)
    with pytest.raises(
        ConfigError,
        match=r"60000 items.*43\.2 GB while fitting in float32 \(14\.4 GB for B alone\)"
        r".*max_memory_gb = 8.*itemknn",
    ):
        build_model(model_config_from_dict({"name": "ease"}), 10, 60_000, train)


@pytest.mark.parametrize("l2", [0.5, 10.0, 500.0])
def test_ease_float32_fit_matches_float64(l2):
    rng = np.random.default_rng(int(l2))
    matrix = (rng.random((400, 150)) < 0.05).astype(np.float64)
    b64 = fitted("ease", matrix, l2=l2, precision="float64").weights.numpy()
    b32 = fitted("ease", matrix, l2=l2, precision="float32").weights.numpy()
    np.testing.assert_allclose(b32, b64, rtol=1e-3, atol=1e-5 * np.abs(b64).max())
    scores64, scores32 = matrix @ b64, matrix @ b32
    # the same top 10 of every user wherever the 10th and 11th scores are not (near) tied
    order64 = np.argsort(-scores64, axis=1)
    gaps = np.take_along_axis(scores64, order64[:, 9:11], axis=1)
    clear = (gaps[:, 0] - gaps[:, 1]) > 1e-4
    top64 = np.sort(order64[:, :10], axis=1)
    top32 = np.sort(np.argsort(-scores32, axis=1)[:, :10], axis=1)
    assert clear.mean() > 0.5 and np.array_equal(top64[clear], top32[clear])


def test_ease_auto_precision_follows_the_condition_bound():
    gram = gram_matrix(sp.csr_matrix(X))
    assert condition_bound(gram, 2.0) == pytest.approx((8 + 2) / 2)  # largest row sum of X^T X is 8
    assert fit_precision(gram, 2.0, "auto") == "float32"
    assert fit_precision(gram, 1e-4, "auto") == "float64"
    assert fit_precision(gram, 1e-4, "float32") == "float32"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"l2": 0.0}, "model.l2: 0.0 is out of range"),
        ({"precision": "half"}, "precision"),
        ({"max_memory_gb": -1.0}, "model.max_memory_gb: -1.0 is out of range"),
    ],
)
def test_ease_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        model_config_from_dict({"name": "ease", **settings})


# --------------------------------------------------------------------------- ItemKNN
def knn_reference(matrix, k, shrink):
    """Plain loops: S[i, j] = shrunk cosine of items i, j for the k best i != j of each target j."""
    n = matrix.shape[1]
    cols = [matrix[:, j] for j in range(n)]
    norm = [sum(v * v for v in c) ** 0.5 for c in cols]
    s = np.zeros((n, n))
    for j in range(n):
        sims = []
        for i in range(n):
            if i != j:
                dot = sum(a * b for a, b in zip(cols[i], cols[j]))
                sims.append((-dot / (norm[i] * norm[j] + shrink), i))
        for neg_sim, i in sorted(sims)[:k]:  # best first, ties to the lower item id
            s[i, j] = max(-neg_sim, 0.0)
    return s


def knn_dense(model):
    n, k = model.neighbour_index.shape
    s = np.zeros((n, n))
    for j in range(n):
        for t in range(k):
            s[model.neighbour_index[j, t], j] += model.neighbour_weight[j, t]
    return s


MATRIX = np.array(
    [
        [1, 1, 0, 0, 1, 0],
        [1, 0, 1, 1, 0, 0],
        [0, 1, 1, 0, 0, 1],
        [1, 1, 1, 0, 1, 0],
        [0, 0, 1, 1, 0, 1],
        [1, 0, 0, 0, 1, 1],
        [0, 1, 0, 1, 0, 0],
    ],
    dtype=np.float64,
)


@pytest.mark.parametrize("k, shrink", [(1, 0.0), (2, 0.0), (2, 3.0), (3, 1.5), (10, 0.5)])
def test_itemknn_matches_a_python_loop(k, shrink):
    model = fitted("itemknn", MATRIX, neighbours=k, shrink=shrink)
    expected = knn_reference(MATRIX, k, shrink)
    np.testing.assert_allclose(knn_dense(model), expected, atol=1e-6)
    assert model.neighbour_index.shape == (6, min(k, 5))  # capped at n_items - 1
    users = torch.arange(MATRIX.shape[0])
    np.testing.assert_allclose(model.score(users).numpy(), MATRIX @ expected, atol=1e-5)


def test_itemknn_shrinkage_damps_rare_co_occurrences():
    exact = knn_dense(fitted("itemknn", MATRIX, neighbours=5, shrink=0.0))
    shrunk = knn_dense(fitted("itemknn", MATRIX, neighbours=5, shrink=2.0))
    assert np.all(shrunk <= exact + 1e-9) and np.any(shrunk < exact)


def test_itemknn_blocks_do_not_change_the_result():
    rng = np.random.default_rng(0)
    matrix = sp.csr_matrix((rng.random((50, 40)) < 0.15).astype(np.float32))
    one_block = top_k_similarities(matrix, 7, 2.0)
    tiny_blocks = top_k_similarities(matrix, 7, 2.0, block_bytes=1)  # one target item per block
    for a, b in zip(one_block, tiny_blocks):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"neighbours": 0}, "model.neighbours: 0 is out of range"),
        ({"shrink": -1.0}, "model.shrink: -1.0 is out of range"),
    ],
)
def test_itemknn_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        model_config_from_dict({"name": "itemknn", **settings})


# ------------------------------------------------------------------------ popularity
def test_popularity_ranks_items_by_training_counts():
    model = fitted("popularity", MATRIX)
    counts = MATRIX.sum(axis=0)  # 4, 4, 4, 3, 3, 3
    scores = model.score(torch.tensor([0, 3]))
    np.testing.assert_array_equal(scores.numpy(), np.stack([counts, counts]))


def test_popularity_counts_each_user_once():
    duplicates = sp.csr_matrix(
        (np.array([2.0, 1.0, 5.0, 1.0], np.float32), ([0, 1, 1, 1], [0, 0, 1, 1])), shape=(2, 3)
    )
    model = build_model(model_config_from_dict({"name": "popularity"}), 2, 3, duplicates)
    model.fit()
    assert model.counts.tolist() == [2.0, 1.0, 0.0]
