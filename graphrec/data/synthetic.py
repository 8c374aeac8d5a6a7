"""Synthetic interaction data for tests, examples and scaling benchmarks."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec.data.dataset import InteractionData


def random_interactions(n_users: int = 40, n_items: int = 60, per_user: int = 8, seed: int = 0) -> InteractionData:
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
