"""Most-popular: every user gets the items with the most training interactions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.config_schema import doc
from graphrec.models.base import ClosedFormRecommender


@dataclass
class PopularityConfig:
    """Most-popular: scores every item by its number of training users, the same ranking for everyone (no SGD)."""

    name: str = doc("Model name.", "popularity")

    def validate(self, prefix: str = "model") -> None:
        pass


class Popularity(ClosedFormRecommender):
    """Non-personalised baseline: ``score(u, i)`` = number of training users of item ``i``.

    Ties keep the evaluator's rule (lower item id first).  The counts are a
    ``[n_items]`` buffer, so checkpoints restore them.
    """

    name = "popularity"
    counts: torch.Tensor
    config_class = PopularityConfig

    def __init__(
        self, n_users: int, n_items: int, config: PopularityConfig, train: sp.csr_matrix
    ) -> None:
        super().__init__(n_users, n_items, config, train)
        self.register_buffer("counts", torch.zeros(n_items))

    def _fit(self) -> dict[str, float]:
        counts = np.bincount(self.interactions.indices, minlength=self.n_items).astype(np.float32)
        self.counts.copy_(torch.from_numpy(counts))
        return {}

    def score(self, users: torch.Tensor) -> torch.Tensor:
        self._check_fitted()
        return self.counts.expand(len(users), -1)
