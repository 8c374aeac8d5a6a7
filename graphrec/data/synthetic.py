"""Synthetic interaction data for tests, examples and scaling benchmarks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec.data.dataset import InteractionData


def random_interactions(
    n_users: int = 40, n_items: int = 60, per_user: int = 8, seed: int = 0
) -> InteractionData:
    """Uniformly random interactions: each user has ``per_user`` distinct items,
    the last two of which go to validation and test (one each).
    """
    if per_user < 3 or per_user > n_items:
        raise ValueError("per_user must be in [3, n_items]")
    rng = np.random.default_rng(seed)
    items = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :per_user]
    users = np.repeat(np.arange(n_users), per_user).reshape(n_users, per_user)

    def matrix(cols: slice) -> sp.csr_matrix:
        u, i = users[:, cols].ravel(), items[:, cols].ravel()
        return sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(n_users, n_items))

    return InteractionData(
        name="random",
        user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        train=matrix(slice(0, per_user - 2)),
        valid=matrix(slice(per_user - 2, per_user - 1)),
        test=matrix(slice(per_user - 1, per_user)),
        meta={"synthetic": {"per_user": per_user, "seed": seed}},
    )


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities proportional to ``rank^-exponent``, assigned to ids in random order."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    weights /= weights.sum()
    return weights[rng.permutation(n)]


def _cap_per_user(keys: np.ndarray, n_items: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Keep at most ``cap`` random items per user of sorted ``user * n_items + item`` keys."""
    users = keys // n_items
    counts = np.bincount(users)
    if counts.max(initial=0) <= cap:
        return keys
    order = np.lexsort(
        (rng.random(len(keys)), users)
    )  # users ascending, random order within a user
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys)) - starts
    return keys[rank < cap]


def power_law_interactions(
    n_users: int,
    n_items: int,
    n_interactions: int,
    user_exponent: float = 0.5,
    item_exponent: float = 0.75,
    test_fraction: float = 0.05,
    seed: int = 0,
) -> InteractionData:
    r"""A power-law bipartite graph for scaling benchmarks.

    User activity and item popularity follow Zipf laws (the id with popularity rank
    :math:`r` is drawn with probability :math:`\propto r^{-a}`; ids are shuffled so
    rank and id are unrelated).  Pairs are drawn independently, duplicates removed and
    no user keeps more than half of the catalogue, until there are exactly
    ``n_interactions`` training interactions plus ``round(test_fraction *
    n_interactions)`` test interactions (a random disjoint subset); there is no
    validation split.  Memory: a few int64 arrays of the interaction count, never
    anything of size ``n_users x n_items``.

    Args:
        n_users, n_items: graph sizes.
        n_interactions: training interactions (stored entries of ``train``).
        user_exponent, item_exponent: Zipf exponents :math:`a` of users and items.
        test_fraction: test interactions per training interaction.
        seed: NumPy seed; the same arguments give the same graph.
    """
    n_test = int(round(n_interactions * test_fraction))
    target = n_interactions + n_test
    cap = max(1, n_items // 2)
    if n_interactions < 1 or target > n_users * cap * 0.5:
        raise ValueError(
            f"{target} interactions do not fit a {n_users} x {n_items} graph at most half full per user "
            "(use more users or items)"
        )
    rng = np.random.default_rng(seed)
    user_p = _zipf_weights(n_users, user_exponent, rng)
    item_p = _zipf_weights(n_items, item_exponent, rng)
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < target:
        draws = int((target - len(keys)) * 1.2) + 1000
        users = rng.choice(n_users, size=draws, p=user_p).astype(np.int64)
        new = users * n_items + rng.choice(n_items, size=draws, p=item_p)
        del users
        keys = _cap_per_user(np.unique(np.concatenate([keys, new])), n_items, cap, rng)
        del new
    keys = keys[np.sort(rng.permutation(len(keys))[:target])]
    is_test = np.zeros(target, dtype=bool)
    is_test[rng.permutation(target)[:n_test]] = True

    def matrix(selected: np.ndarray) -> sp.csr_matrix:
        rows = (selected // n_items).astype(np.int32 if n_users < 2**31 else np.int64)
        cols = (selected % n_items).astype(np.int32 if n_items < 2**31 else np.int64)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
        return sp.csr_matrix(
            (np.ones(len(selected), np.float32), cols, indptr), shape=(n_users, n_items)
        )

    train, test = matrix(keys[~is_test]), matrix(keys[is_test])  # keys sorted => canonical CSR
    del keys, is_test
    return InteractionData(
        name=f"power-law-{n_interactions}",
        user_ids=np.arange(n_users).astype(str).astype(object),
        item_ids=np.arange(n_items).astype(str).astype(object),
        train=train,
        test=test,
        meta={
            "synthetic": {
                "kind": "power_law",
                "user_exponent": user_exponent,
                "item_exponent": item_exponent,
                "test_fraction": test_fraction,
                "seed": seed,
            }
        },
    )
