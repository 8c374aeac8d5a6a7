"""Evaluator protocol: masking, skipping, batching, scorer handling, reference check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.data.dataset import InteractionData
from graphrec.evaluation import Evaluator, evaluate_scorer


# ----------------------------------------------------------------- reference
def reference_evaluate(scores, target, excludes, ks, popularity):
    """Slow, obviously-correct evaluation with plain Python loops."""
    n_users, n_items = scores.shape
    per_user = {}
    users = []
    counts = {k: [0] * n_items for k in ks}
    for u in range(n_users):
        truth = {int(i) for i in target[u].indices if target[u, i] > 0}
        if not truth:
            continue
        users.append(u)
        banned = set()
        for m in excludes:
            banned |= {int(i) for i in m[u].indices if m[u, i] != 0}
        candidates = [i for i in range(n_items) if i not in banned]
        ranking = sorted(candidates, key=lambda i: (-float(scores[u, i]), i))
        for k in ks:
            top = ranking[:k]
            for i in top:
                counts[k][i] += 1
            rel = [1 if i in truth else 0 for i in top]
            hits = sum(rel)
            dcg = sum(r / math.log2(pos + 2) for pos, r in enumerate(rel))
            idcg = sum(1 / math.log2(pos + 2) for pos in range(min(k, len(truth))))
            first = next((pos for pos, r in enumerate(rel) if r), None)
            ap, seen = 0.0, 0
            for pos, r in enumerate(rel):
                if r:
                    seen += 1
                    ap += seen / (pos + 1)
            values = {
                "recall": hits / len(truth),
                "ndcg": dcg / idcg,
                "precision": hits / k,
                "hitrate": 1.0 if hits else 0.0,
                "mrr": 0.0 if first is None else 1 / (first + 1),
                "map": ap / min(k, len(truth)),
            }
            for name, v in values.items():
                per_user.setdefault(f"{name}@{k}", []).append(v)
    metrics = {name: sum(v) / len(v) for name, v in per_user.items()}
    for k in ks:
        c = counts[k]
        metrics[f"coverage@{k}"] = sum(1 for x in c if x > 0) / n_items
        s = sorted(c)
        n = len(s)
        metrics[f"gini@{k}"] = sum((2 * (i + 1) - n - 1) * s[i] for i in range(n)) / (n * sum(c))
        metrics[f"avg_popularity@{k}"] = sum(c[i] * popularity[i] for i in range(n_items)) / sum(c)
    return users, per_user, metrics


def random_problem(seed, n_users=60, n_items=25):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=(n_users, n_items)), 1).astype(np.float32)  # many ties
    scores[:5] = 0.0  # users whose scores all tie
    train = sp.random(
        n_users, n_items, density=0.3, format="csr", random_state=rng, dtype=np.float32
    )
    train = train.tolil()
    train[7, :22] = 1.0  # a user with fewer unmasked items than K
    train = sp.csr_matrix(train)
    valid = sp.random(
        n_users, n_items, density=0.1, format="csr", random_state=rng, dtype=np.float32
    )
    target = sp.random(
        n_users, n_items, density=0.12, format="csr", random_state=rng, dtype=np.float32
    )
    for m in (train, valid, target):
        m.data[:] = 1.0
        m.sort_indices()
    popularity = np.asarray(train.sum(axis=0)).ravel()
    return scores, train, valid, target, popularity


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_slow_reference(seed, make_scorer):
    scores, train, valid, target, popularity = random_problem(seed)
    ks = (1, 3, 5, 10)
    users, per_user, metrics = reference_evaluate(scores, target, [train, valid], ks, popularity)
    res = Evaluator(ks=ks, item_popularity=popularity, batch_size=16).evaluate(
        make_scorer(scores), target, exclude=[train, valid]
    )
    np.testing.assert_array_equal(res.users, users)
    assert set(res.metrics) == set(metrics)
    for name, values in per_user.items():
        np.testing.assert_allclose(res.per_user[name], values, rtol=0, atol=1e-12, err_msg=name)
    for name, value in metrics.items():
        assert res.metrics[name] == pytest.approx(value, abs=1e-12), name


def test_batching_invariance(make_scorer):
    scores, train, valid, target, popularity = random_problem(3, n_users=80)
    results = [
        Evaluator(ks=(5, 10), item_popularity=popularity, batch_size=b).evaluate(
            make_scorer(scores), target, exclude=[train]
        )
        for b in (1, 7, 1000)
    ]
    for other in results[1:]:
        np.testing.assert_array_equal(other.users, results[0].users)
        assert other.metrics == results[0].metrics
        for name in results[0].per_user:
            np.testing.assert_array_equal(other.per_user[name], results[0].per_user[name])


def test_masked_items_never_recommended(make_csr, monkeypatch):
    # Scorer ranks the train items highest; they must never appear in a top-K list.
    n_users, n_items = 30, 12
    rng = np.random.default_rng(5)
    train = sp.csr_matrix((rng.random((n_users, n_items)) < 0.4).astype(np.float32))
    target = make_csr({u: [u % n_items] for u in range(n_users)}, (n_users, n_items))
    seen = []

    def scorer(users):  # random scores, +10 on the user's train items
        return (
            torch.rand(len(users), n_items) + torch.from_numpy(train[users.numpy()].toarray()) * 10
        )

    import graphrec.evaluation.evaluator as mod

    original = mod.topk_with_ties

    def spy_topk(scores, k):
        values, indices = original(scores, k)
        seen.append((values.clone(), indices.clone()))
        return values, indices

    monkeypatch.setattr(mod, "topk_with_ties", spy_topk)
    res = Evaluator(ks=(n_items,), metrics=("recall",)).evaluate(scorer, target, exclude=train)
    values, indices = seen[0]
    # with K = n_items the valid part of each list is exactly the unmasked items
    users = res.users
    for row, u in enumerate(users):
        banned = set(train[u].indices.tolist())
        recommended = [
            i for v, i in zip(values[row].tolist(), indices[row].tolist()) if v != -math.inf
        ]
        assert not banned & set(recommended)
        assert sorted(recommended) == sorted(set(range(n_items)) - banned)
    # a target that is also a train item can never be a hit
    assert all(
        res.per_user[f"recall@{n_items}"][row]
        == (0.0 if u % n_items in set(train[u].indices.tolist()) else 1.0)
        for row, u in enumerate(users)
    )


def test_exclude_list_of_two_matrices(make_csr, make_scorer):
    # 1 user, 5 items, scores descending by index: ranking 0 1 2 3 4.
    # train masks {0}, valid masks {1} -> top-2 = [2, 3]; target {2, 4}:
    #   recall@2 = 1/2, mrr@2 = 1, precision@2 = 1/2.
    # Masking only train -> top-2 = [1, 2]: mrr@2 = 1/2.
    shape = (1, 5)
    scorer = make_scorer([[0.9, 0.8, 0.7, 0.6, 0.5]])
    target = make_csr({0: [2, 4]}, shape)
    train, valid = make_csr({0: [0]}, shape), make_csr({0: [1]}, shape)
    ev = Evaluator(ks=(2,))
    both = ev.evaluate(scorer, target, exclude=[train, valid])
    assert both["recall@2"] == pytest.approx(1 / 2)
    assert both["mrr@2"] == pytest.approx(1.0)
    assert both["coverage@2"] == pytest.approx(2 / 5)
    only_train = ev.evaluate(scorer, target, exclude=[train])
    assert only_train["mrr@2"] == pytest.approx(1 / 2)
    assert both.meta["n_exclude_matrices"] == 2


def test_overlapping_masks_and_caller_tensor_restored(make_csr):
    # The scorer returns the same tensor every call; masking must not leave -inf in it.
    table = torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4]])
    before = table.clone()
    shape = (2, 4)
    train = make_csr({0: [0, 1], 1: [3]}, shape)
    valid = make_csr({0: [1], 1: [3, 2]}, shape)  # overlaps train
    target = make_csr({0: [2], 1: [1]}, shape)
    res = Evaluator(ks=(1,)).evaluate(lambda users: table, target, exclude=[train, valid])
    assert torch.equal(table, before)
    # user 0: items 0,1 masked -> top-1 = 2 (hit); user 1: items 2,3 masked -> top-1 = 1 (hit)
    np.testing.assert_array_equal(res.per_user["hitrate@1"], [1.0, 1.0])


def test_expanded_integer_and_numpy_scores(make_csr):
    # a popularity-like scorer returning an expanded (stride-0) integer tensor
    pop = torch.tensor([3, 1, 2, 5])
    target = make_csr({0: [2], 1: [0]}, (2, 4))
    train = make_csr({0: [3]}, (2, 4))
    res = Evaluator(ks=(1, 2)).evaluate(lambda u: pop.expand(len(u), 4), target, exclude=[train])
    # user 0: 3 masked -> ranking 0 (3), 2 (2), 1 -> target 2 at rank 2; user 1: ranking 3, 0 -> rank 2
    np.testing.assert_allclose(res.per_user["mrr@2"], [1 / 2, 1 / 2])
    assert pop.tolist() == [3, 1, 2, 5]
    array = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]], dtype=np.float32)
    res = Evaluator(ks=(2,)).evaluate(lambda u: array[u.numpy()], target)
    np.testing.assert_allclose(res.per_user["hitrate@2"], [1.0, 0.0])


def test_users_argument(make_csr, make_scorer):
    scores, train, _, target, _ = random_problem(4)
    ev = Evaluator(ks=(5,))
    full = ev.evaluate(make_scorer(scores), target, exclude=[train])
    n_target = np.diff(target.indptr)
    no_target = int(np.flatnonzero(n_target == 0)[0])
    wanted = np.array([full.users[3], no_target, full.users[0], full.users[5]])
    sub = ev.evaluate(make_scorer(scores), target, exclude=[train], users=wanted)
    np.testing.assert_array_equal(
        sub.users, wanted[[0, 2, 3]]
    )  # order kept, no-target user skipped
    pos = {u: i for i, u in enumerate(full.users)}
    np.testing.assert_array_equal(
        sub.per_user["ndcg@5"], full.per_user["ndcg@5"][[pos[u] for u in sub.users]]
    )
    with pytest.raises(ValueError, match="duplicate"):
        ev.evaluate(make_scorer(scores), target, users=[1, 1])
    with pytest.raises(ValueError, match="in \\[0"):
        ev.evaluate(make_scorer(scores), target, users=[10_000])
    with pytest.raises(ValueError, match="no user to evaluate"):
        ev.evaluate(make_scorer(scores), target, users=[no_target])


def test_bad_scores_and_arguments(make_csr, make_scorer):
    target = make_csr({0: [0]}, (1, 3))
    ev = Evaluator(ks=(1,))
    with pytest.raises(ValueError, match="NaN"):
        ev.evaluate(make_scorer([[0.0, math.nan, 1.0]]), target)
    # many NaN (more than K + 1) in a row, second batch -> reports the right user
    nan_scores = [[0.0, 1.0, 2.0, 3.0], [math.nan] * 4]
    with pytest.raises(ValueError, match=r"users \[1\]"):
        Evaluator(ks=(1,), batch_size=1).evaluate(
            make_scorer(nan_scores), make_csr({0: [0], 1: [0]}, (2, 4))
        )
    # a NaN on a masked item does not matter
    res = ev.evaluate(
        make_scorer([[0.0, math.nan, 1.0]]), target, exclude=[make_csr({0: [1]}, (1, 3))]
    )
    assert res["hitrate@1"] == 0.0
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate(make_scorer([[0.0, 1.0]]), target)
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate(lambda u: torch.zeros(1, 4), target)
    with pytest.raises(TypeError):
        ev.evaluate(lambda u: [[0.0, 1.0, 2.0]], target)
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate(make_scorer([[0.0, 1.0, 2.0]]), target, exclude=[sp.csr_matrix((1, 4))])
    with pytest.raises(ValueError, match="unknown metric"):
        Evaluator(metrics=("recall", "coverage"))
    with pytest.raises(ValueError, match="ks"):
        Evaluator(ks=(0, 10))
    with pytest.raises(ValueError, match="batch_size"):
        Evaluator(batch_size=0)
    with pytest.raises(ValueError, match="item_popularity"):
        Evaluator(item_popularity=np.ones(5)).evaluate(make_scorer([[0.0, 1.0, 2.0]]), target)


def test_explicit_zeros_and_duplicates_in_target(make_scorer):
    # stored 0.0 is not a target; duplicate (0, 1) entries count once.
    target = sp.csr_matrix(
        (np.array([0.0, 1.0, 1.0], dtype=np.float32), np.array([0, 1, 1]), np.array([0, 3])),
        shape=(1, 3),
    )
    assert target.nnz == 3  # really stored: one explicit zero, one duplicate
    res = Evaluator(ks=(3,)).evaluate(make_scorer([[3.0, 2.0, 1.0]]), target)
    # target {1} at rank 2: recall 1, mrr 1/2
    assert res["recall@3"] == 1.0
    assert res["mrr@3"] == 0.5


def test_scorer_called_under_no_grad(make_csr):
    weight = torch.nn.Parameter(torch.tensor([[0.1, 0.2, 0.3]]))
    calls = []

    def scorer(users):
        calls.append(torch.is_grad_enabled())
        return weight.expand(len(users), 3) * 1.0

    Evaluator(ks=(1,)).evaluate(scorer, make_csr({0: [2]}, (1, 3)))
    assert calls == [False]


def test_progress_bar(make_csr, make_scorer, capsys):
    ev = Evaluator(ks=(1,), batch_size=1)
    scorer, target = make_scorer([[0.0, 1.0], [1.0, 0.0]]), make_csr({0: [1], 1: [0]}, (2, 2))
    ev.evaluate(scorer, target)
    assert "evaluate" not in capsys.readouterr().err  # off by default
    res = ev.evaluate(scorer, target, progress=True)
    assert "evaluate" in capsys.readouterr().err
    assert res["hitrate@1"] == 1.0


# -------------------------------------------------------------- convenience
def make_data(scores_shape=(20, 15), seed=0):
    scores, train, valid, target, popularity = random_problem(seed, *scores_shape)
    n_users, n_items = scores_shape
    data = InteractionData(
        name="toy",
        user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        train=train,
        valid=valid,
        test=target,
    )
    return scores, data


def test_evaluate_scorer_masks(make_scorer):
    scores, data = make_data()
    scorer = make_scorer(scores)
    pop = data.item_popularity()
    plain = evaluate_scorer(scorer, data, split="test", ks=(3, 5))
    ref = Evaluator(ks=(3, 5), item_popularity=pop).evaluate(
        scorer, data.test, exclude=[data.train]
    )
    assert plain.metrics == ref.metrics
    masked = evaluate_scorer(scorer, data, split="test", ks=(3, 5), mask_valid=True, batch_size=4)
    ref2 = Evaluator(ks=(3, 5), item_popularity=pop).evaluate(
        scorer, data.test, exclude=[data.train, data.valid]
    )
    assert masked.metrics == ref2.metrics
    assert masked.meta["mask_valid"] is True and masked.meta["split"] == "test"
    valid = evaluate_scorer(scorer, data, split="valid", ks=(3,), mask_valid=True)
    ref3 = Evaluator(ks=(3,), item_popularity=pop).evaluate(
        scorer, data.valid, exclude=[data.train]
    )
    assert valid.metrics == ref3.metrics
    assert valid.meta["mask_valid"] is False
    with pytest.raises(ValueError, match="split"):
        evaluate_scorer(scorer, data, split="train")
