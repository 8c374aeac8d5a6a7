import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.data.dataset import InteractionData


def random_interactions(n_users: int = 40, n_items: int = 60, per_user: int = 8, seed: int = 0) -> InteractionData:
    """A small random dataset: every user has train, valid and test items."""
    rng = np.random.default_rng(seed)
    rows = {"train": [], "valid": [], "test": []}
    for user in range(n_users):
        items = rng.choice(n_items, size=per_user, replace=False)
        for split, chunk in zip(("train", "valid", "test"), np.split(items, [per_user - 2, per_user - 1])):
            rows[split] += [(user, int(i)) for i in chunk]

    def matrix(pairs):
        u, i = zip(*pairs)
        return sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(n_users, n_items))

    return InteractionData(
        name="random",
        user_ids=np.array([f"u{i}" for i in range(n_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(n_items)], dtype=object),
        train=matrix(rows["train"]),
        valid=matrix(rows["valid"]),
        test=matrix(rows["test"]),
    )


@pytest.fixture
def small_data() -> InteractionData:
    return random_interactions()
