"""Every metric on a small hand-made case, expected values derived by hand.

Case: 4 users x 6 items, ks = (2, 4).

user 0  scores [.9 .8 .7 .6 .5 .4], train {}, target {1, 3}
        ranking 0 1 2 3 4 5 -> relevance of top-4 = [0, 1, 0, 1]
user 1  scores [.5 .5 .9 .5 .5 .5], train {2} (masked), target {3, 5}
        after masking five items tie at .5 -> lower index first: 0 1 3 4 5
        top-4 = 0 1 3 4 (item 5 loses the boundary tie) -> relevance [0, 0, 1, 0]
user 2  no target item -> skipped
user 3  scores [.1 .9 .9 .9 .9 .9], train {1..5} (masked), target {0}
        only item 0 can be recommended -> list [0] -> relevance [1]
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from graphrec.evaluation import Evaluator

L2, L3, L4, L5 = math.log2(2), math.log2(3), math.log2(4), math.log2(5)  # discounts of ranks 1..4
IDCG1 = 1 / L2
IDCG2 = 1 / L2 + 1 / L3

SCORES = [
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
    [0.5, 0.5, 0.9, 0.5, 0.5, 0.5],
    [0.3, 0.2, 0.1, 0.0, 0.0, 0.0],
    [0.1, 0.9, 0.9, 0.9, 0.9, 0.9],
]
TRAIN = {1: [2], 3: [1, 2, 3, 4, 5]}
TARGET = {0: [1, 3], 1: [3, 5], 3: [0]}
POPULARITY = np.array([10, 20, 30, 40, 50, 60])

# Per-user expected values, users (0, 1, 3).
EXPECTED_PER_USER = {
    # u0: 1 hit of 2 in top-2; u1: none; u3: 1 of 1
    "recall@2": [1 / 2, 0.0, 1.0],
    # u0: 2 hits of 2 in top-4; u1: 1 of 2; u3: 1 of 1
    "recall@4": [1.0, 1 / 2, 1.0],
    # hits / K (u3 has one item only, still divided by K)
    "precision@2": [1 / 2, 0.0, 1 / 2],
    "precision@4": [2 / 4, 1 / 4, 1 / 4],
    "hitrate@2": [1.0, 0.0, 1.0],
    "hitrate@4": [1.0, 1.0, 1.0],
    # first hit at rank 2 (u0), none / rank 3 (u1), rank 1 (u3)
    "mrr@2": [1 / 2, 0.0, 1.0],
    "mrr@4": [1 / 2, 1 / 3, 1.0],
    # u0: DCG = 1/log2(3), IDCG over min(2,2)=2 ranks; u3: IDCG over min(K,1)=1 rank
    "ndcg@2": [(1 / L3) / IDCG2, 0.0, 1.0],
    # u0: DCG = 1/log2(3) + 1/log2(5); u1: DCG = 1/log2(4), IDCG over min(4,2)=2 ranks
    "ndcg@4": [(1 / L3 + 1 / L5) / IDCG2, (1 / L4) / IDCG2, 1.0],
    # u0 @2: P@2 * rel_2 / min(2,2) = (1/2)/2; u3: P@1 / min(K,1) = 1
    "map@2": [(1 / 2) / 2, 0.0, 1.0],
    # u0 @4: (P@2 + P@4) / 2 = (1/2 + 2/4)/2; u1 @4: P@3 / min(4,2) = (1/3)/2
    "map@4": [(1 / 2 + 2 / 4) / 2, (1 / 3) / 2, 1.0],
}


@pytest.fixture
def result(make_csr, make_scorer):
    shape = (4, 6)
    evaluator = Evaluator(ks=(4, 2), item_popularity=POPULARITY, batch_size=2)  # ks get sorted
    return evaluator.evaluate(
        make_scorer(SCORES), make_csr(TARGET, shape), exclude=[make_csr(TRAIN, shape)]
    )


def test_users_without_targets_are_skipped(result):
    np.testing.assert_array_equal(result.users, [0, 1, 3])
    assert result.users.dtype == np.int64
    assert result.num_users == 3
    assert result.meta["skipped_users"] == 1
    assert result.seconds >= 0


@pytest.mark.parametrize("name", sorted(EXPECTED_PER_USER))
def test_accuracy_metric_by_hand(result, name):
    np.testing.assert_allclose(result.per_user[name], EXPECTED_PER_USER[name], rtol=0, atol=1e-12)
    assert result.metrics[name] == pytest.approx(np.mean(EXPECTED_PER_USER[name]), abs=1e-12)


def test_metric_names_and_order(result):
    names = [
        f"{m}@{k}" for m in ("recall", "ndcg", "precision", "hitrate", "mrr", "map") for k in (2, 4)
    ]
    names += [
        "coverage@2",
        "coverage@4",
        "gini@2",
        "gini@4",
        "avg_popularity@2",
        "avg_popularity@4",
    ]
    assert list(result.metrics) == names
    assert list(result.per_user) == names[:12]


def test_some_means_written_out(result):
    # recall@4 = (1 + 1/2 + 1) / 3 ; precision@4 = (1/2 + 1/4 + 1/4) / 3 ; mrr@4 = (1/2 + 1/3 + 1) / 3
    assert result["recall@4"] == pytest.approx(2.5 / 3)
    assert result["precision@4"] == pytest.approx(1 / 3)
    assert result["mrr@4"] == pytest.approx(11 / 18)
    # ndcg@2 = (0.63093 / 1.63093 + 0 + 1) / 3 = 0.462284
    assert result["ndcg@2"] == pytest.approx(0.462284, abs=1e-6)


def test_beyond_accuracy_by_hand(result):
    # top-2 lists: u0 {0,1}, u1 {0,1}, u3 {0}  -> counts [3, 2, 0, 0, 0, 0]
    # coverage = 2/6; Gini: sorted [0,0,0,0,2,3], weights (2i-7) = -5,-3,-1,1,3,5,
    #   sum = 3*2 + 5*3 = 21, / (6 * 5) = 0.7
    # avg popularity = (3*10 + 2*20) / 5 = 14
    assert result["coverage@2"] == pytest.approx(2 / 6)
    assert result["gini@2"] == pytest.approx(0.7)
    assert result["avg_popularity@2"] == pytest.approx(14.0)
    # top-4 lists: u0 {0,1,2,3}, u1 {0,1,3,4}, u3 {0} (masked items are not recommendations)
    #   counts [3, 2, 1, 2, 1, 0] -> coverage 5/6
    # Gini: sorted [0,1,1,2,2,3], sum 9: -5*0 -3*1 -1*1 +1*2 +3*2 +5*3 = 19 -> 19/54
    # avg popularity = (30 + 40 + 30 + 80 + 50) / 9 = 230/9
    assert result["coverage@4"] == pytest.approx(5 / 6)
    assert result["gini@4"] == pytest.approx(19 / 54)
    assert result["avg_popularity@4"] == pytest.approx(230 / 9)


def test_ties_break_towards_lower_index(make_csr, make_scorer):
    # All 5 items tie; K=2 must give items 0 and 1.  Target {1} -> rank 2: mrr 1/2, ndcg 1/log2(3).
    # Target {2} would be a miss at K=2.
    scores = [[1.0] * 5, [1.0] * 5]
    target = make_csr({0: [1], 1: [2]}, (2, 5))
    res = Evaluator(ks=(2,)).evaluate(make_scorer(scores), target)
    np.testing.assert_allclose(res.per_user["mrr@2"], [1 / 2, 0.0])
    np.testing.assert_allclose(res.per_user["ndcg@2"], [1 / L3, 0.0])
    np.testing.assert_allclose(res.per_user["hitrate@2"], [1.0, 0.0])


def test_tie_inside_list_is_ordered_by_index(make_csr, make_scorer):
    # scores: item 3 = 2.0 first, then items 0, 2, 4 tie at 1.0 -> ranking 3, 0, 2, 4, 1
    # target {4} sits at rank 4: mrr@4 = 1/4, ndcg@4 = 1/log2(5); {2} at rank 3 for user 1
    scores = [[1.0, 0.0, 1.0, 2.0, 1.0], [1.0, 0.0, 1.0, 2.0, 1.0]]
    target = make_csr({0: [4], 1: [2]}, (2, 5))
    res = Evaluator(ks=(4,)).evaluate(make_scorer(scores), target)
    np.testing.assert_allclose(res.per_user["mrr@4"], [1 / 4, 1 / 3])
    np.testing.assert_allclose(res.per_user["ndcg@4"], [1 / L5, 1 / L4])


def test_k_larger_than_number_of_items(make_csr, make_scorer):
    # 3 items, K = 5: list is all 3 items, precision still divides by 5.
    # scores [.1 .3 .2] -> ranking 1 2 0; target {0}: rank 3 -> mrr 1/3, precision 1/5,
    # ndcg = (1/log2(4)) / 1, map = P@3 / min(5,1) = 1/3
    res = Evaluator(ks=(5,), item_popularity=np.array([1, 2, 3])).evaluate(
        make_scorer([[0.1, 0.3, 0.2]]), make_csr({0: [0]}, (1, 3))
    )
    assert res["precision@5"] == pytest.approx(1 / 5)
    assert res["mrr@5"] == pytest.approx(1 / 3)
    assert res["ndcg@5"] == pytest.approx(0.5)
    assert res["map@5"] == pytest.approx(1 / 3)
    assert res["coverage@5"] == pytest.approx(1.0)
    assert res["gini@5"] == pytest.approx(0.0)
    assert res["avg_popularity@5"] == pytest.approx(2.0)


def test_metric_subset_and_no_beyond_accuracy(make_csr, make_scorer):
    res = Evaluator(ks=(1,), metrics=("mrr",), beyond_accuracy=False).evaluate(
        make_scorer([[0.0, 1.0]]), make_csr({0: [1]}, (1, 2))
    )
    assert res.metrics == {"mrr@1": 1.0}
