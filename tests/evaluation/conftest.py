"""Shared helpers for the evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch


def csr(rows: dict[int, list[int]], shape: tuple[int, int]) -> sp.csr_matrix:
    """CSR matrix with 1.0 at ``(u, i)`` for each ``i in rows[u]``."""
    r = [u for u, items in rows.items() for _ in items]
    c = [i for items in rows.values() for i in items]
    m = sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=shape)
    m.sort_indices()
    return m


def table_scorer(scores) -> callable:
    """Scorer looking up rows of a fixed ``[n_users, n_items]`` score table."""
    table = torch.as_tensor(np.asarray(scores, dtype=np.float32))

    def score(users: torch.Tensor) -> torch.Tensor:
        assert users.dtype == torch.long
        assert not torch.is_grad_enabled()
        return table[users]

    return score


@pytest.fixture
def make_csr():
    return csr


@pytest.fixture
def make_scorer():
    return table_scorer
