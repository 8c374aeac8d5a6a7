"""Vectorised BPR triple sampling: uniform negatives that exclude a user's positives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.errors import TrainingError


class BPRSampler:
    """Yields ``(users, pos_items, neg_items)`` batches, one pass over the positives per epoch.

    Every training interaction is a positive exactly once per epoch, in a random
    order; each gets one negative drawn uniformly from the items the user has not
    interacted with in training.  Rejection sampling is vectorised: all negatives
    of an epoch are drawn at once and only the collisions are redrawn.

    Args:
        train: ``[n_users, n_items]`` CSR matrix of training interactions.
        generator: the torch generator that owns all randomness of sampling (its
            state is saved in checkpoints so a resumed run draws the same batches).
    """

    def __init__(self, train: sp.csr_matrix, generator: torch.Generator) -> None:
        train = sp.csr_matrix(train)
        train.sum_duplicates()
        train.sort_indices()
        self.n_users, self.n_items = train.shape
        counts = np.diff(train.indptr)
        full = np.flatnonzero(counts >= self.n_items)
        if len(full):
            raise TrainingError(
                f"user {int(full[0])} interacted with every item; no negative item can be sampled"
            )
        self.users = torch.from_numpy(np.repeat(np.arange(self.n_users, dtype=np.int64), counts))
        self.items = torch.from_numpy(train.indices.astype(np.int64))
        # CSR with sorted indices => keys already sorted, ready for searchsorted.
        self.positive_keys = self.users * self.n_items + self.items
        self.generator = generator

    @property
    def num_interactions(self) -> int:
        return int(self.users.numel())

    def num_batches(self, batch_size: int) -> int:
        return -(-self.num_interactions // batch_size)

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Boolean ``[n]``: whether each (user, item) pair is a training interaction."""
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.positive_keys, keys).clamp_(max=len(self.positive_keys) - 1)
        return self.positive_keys[pos] == keys

    def sample_negatives(self, users: torch.Tensor, max_rounds: int = 1000) -> torch.Tensor:
        """Uniform negatives ``[n]`` for ``users`` (``[n]``), excluding their training items."""
        negatives = torch.randint(self.n_items, users.shape, generator=self.generator)
        todo = torch.nonzero(self.is_positive(users, negatives)).squeeze(1)
        for _ in range(max_rounds):
            if todo.numel() == 0:
                return negatives
            redraw = torch.randint(self.n_items, todo.shape, generator=self.generator)
            negatives[todo] = redraw
            todo = todo[self.is_positive(users[todo], redraw)]
        raise TrainingError(
            f"negative sampling did not converge after {max_rounds} rounds (users too dense?)"
        )

    def prepare_epoch(self, model: Any) -> dict[str, float]:
        """Hook called by the trainer before each epoch; figures it returns join the epoch log."""
        return {}

    def epoch(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Batches of one epoch: shuffled positives with fresh negatives."""
        order = torch.randperm(self.num_interactions, generator=self.generator)
        users = self.users[order]
        items = self.items[order]
        negatives = self.sample_negatives(users)
        for start in range(0, len(order), batch_size):
            stop = start + batch_size
            yield users[start:stop], items[start:stop], negatives[start:stop]


def build_sampler(data: Any, generator: torch.Generator, augmentation: Any = None) -> Any:
    """The trainer's sampler: :class:`BPRSampler`, or with ``augmentation.path`` set, an
    :class:`~graphrec.augmentation.sampler.AugmentedBPRSampler` replaying that edge file."""
    sampler = BPRSampler(data.train, generator)
    if augmentation is None or not augmentation.path:
        return sampler
    from graphrec.augmentation.edges import load_edges
    from graphrec.augmentation.sampler import AugmentedBPRSampler

    edges = load_edges(augmentation.path, data)
    return AugmentedBPRSampler(
        sampler, edges, augmentation.fraction, augmentation.denoise, augmentation.rate
    )
