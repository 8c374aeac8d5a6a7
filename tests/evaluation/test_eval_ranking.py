"""Deterministic top-K with ties, and CSR row gathering."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.evaluation import gather_csr_rows, mask_scores, restore_scores, topk_with_ties

INF = float("inf")


def reference_topk(row, k):
    order = sorted(range(len(row)), key=lambda i: (-row[i], i))
    return order[:k]


@pytest.mark.parametrize(
    "row, k, expected",
    [
        ([1, 1, 1, 1, 1], 2, [0, 1]),  # all tie: lowest indices
        ([0, 1, 1, 1, 2], 2, [4, 1]),  # boundary tie between 1, 2, 3 -> 1
        ([0, 1, 1, 1, 2], 3, [4, 1, 2]),
        ([0, 1, 1, 1, 2], 4, [4, 1, 2, 3]),  # no boundary tie, ties inside ordered by index
        ([3, 1, 3, 1, 3], 2, [0, 2]),
        ([-INF, 5, -INF, -INF], 3, [1, 0, 2]),  # -inf ties also lowest index first
        ([2, 1, 3], 3, [2, 0, 1]),  # k == n_items
        ([2, 1, 3], 7, [2, 0, 1]),  # k > n_items is clipped
    ],
)
def test_topk_with_ties_cases(row, k, expected):
    values, indices = topk_with_ties(torch.tensor([row], dtype=torch.float32), k)
    assert indices[0].tolist() == expected
    assert values[0].tolist() == [float(row[i]) for i in expected]


def test_topk_with_ties_matches_reference_on_random_ties():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (200, 30), generator=gen).float()  # heavy ties
    scores[:50] = torch.round(torch.randn(50, 30, generator=gen), decimals=1)
    for k in (1, 5, 10, 29, 30):
        _, indices = topk_with_ties(scores, k)
        for r in range(scores.shape[0]):
            assert indices[r].tolist() == reference_topk(scores[r].tolist(), k)


def test_topk_float64_and_mixed_tie_rows():
    scores = torch.tensor([[0.5, 0.1, 0.5, 0.9], [0.4, 0.3, 0.2, 0.1]], dtype=torch.float64)
    values, indices = topk_with_ties(scores, 2)
    assert indices.tolist() == [[3, 0], [0, 1]]
    assert values.dtype == torch.float64


def test_gather_csr_rows_any_order():
    m = sp.csr_matrix(np.array([[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1]], dtype=np.float32))
    local, cols = gather_csr_rows(m, np.array([2, 1, 0, 2]))
    assert local.tolist() == [0, 0, 2, 2, 3, 3]
    assert cols.tolist() == [0, 3, 1, 2, 0, 3]
    local, cols = gather_csr_rows(m, np.array([1]))
    assert local.size == 0 and cols.size == 0


def test_mask_scores_in_place_and_restore():
    scores = torch.arange(8, dtype=torch.float32).view(2, 4)
    saved = mask_scores(scores, np.array([0, 1, 1]), np.array([3, 0, 2]), keep_old=True)
    assert saved[1].tolist() == [3.0, 4.0, 6.0]
    assert scores.tolist() == [[0, 1, 2, -INF], [-INF, 5, -INF, 7]]
    restore_scores(scores, saved)
    assert scores.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert mask_scores(scores, np.array([0]), np.array([1])) is None  # keep_old=False
    assert scores[0, 1] == -INF
    assert (
        mask_scores(scores, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), keep_old=True)
        is None
    )


def test_topk_ties_found_beyond_the_first_prefix():
    # Long rows: the lowest-index tied items are found by scanning growing prefixes
    # (256, 1024, 4096, ... columns); check rows that need several rounds.
    n, k = 5000, 20
    gen = torch.Generator().manual_seed(1)
    rows = torch.zeros(6, n)
    rows[1] = torch.round(torch.randn(n, generator=gen) * 2)  # many ties at the threshold
    # 15 items above the threshold 1.0, then 5 to take from the ties {10, 4000, 4001, ...}:
    # prefixes of 256 and 1024 columns hold only item 10, the 4096-column prefix suffices
    rows[2, 4000:] = 1.0
    rows[2, 10] = 1.0
    rows[2, 4900:4915] = 2.0
    rows[3] = torch.randn(n, generator=gen)  # no ties
    rows[4, -30:] = 1.0  # ties only at the very end
    rows[5, :] = -INF
    rows[5, 4999] = 0.0
    values, indices = topk_with_ties(rows, k)
    for r in range(rows.shape[0]):
        assert indices[r].tolist() == reference_topk(rows[r].tolist(), k), r
        assert values[r].tolist() == [rows[r, i].item() for i in indices[r].tolist()]


def test_score_blocks_bound_memory_without_changing_results():
    from graphrec.data.synthetic import random_interactions
    from graphrec.evaluation import Evaluator

    data = random_interactions(n_users=90, n_items=70, per_user=9, seed=4)
    gen = torch.Generator().manual_seed(0)
    user_emb, item_emb = torch.randn(90, 6, generator=gen), torch.randn(70, 6, generator=gen)
    calls = []

    def scorer(users):
        calls.append(len(users))
        return torch.round(user_emb[users] @ item_emb.T, decimals=1)  # rounded: ties included

    whole = Evaluator(ks=(5, 10), batch_size=64).evaluate(scorer, data.test, exclude=[data.train])
    assert max(calls) == 64
    calls.clear()
    tiny = Evaluator(
        ks=(5, 10), batch_size=64, max_block_mb=7 * 70 * 4 / 2**20
    )  # 7 rows of 70 items
    assert tiny.rows_per_block(70) == 7
    blocked = tiny.evaluate(scorer, data.test, exclude=[data.train])
    assert max(calls) == 7 and blocked.meta["rows_per_block"] == 7
    assert blocked.metrics == whole.metrics
    for name, values in whole.per_user.items():
        np.testing.assert_array_equal(blocked.per_user[name], values)
    with pytest.raises(ValueError, match="max_block_mb"):
        Evaluator(max_block_mb=0)
