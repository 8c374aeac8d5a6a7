"""Item-based k-nearest neighbours with shrunk cosine similarity, fitted in closed form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.config_schema import doc
from graphrec.errors import ConfigError
from graphrec.models.base import ClosedFormRecommender, Scorer

#: memory bound of one block of the similarity computation (float64 similarities + int64 sort order)
BLOCK_BYTES = 64 * 2**20
#: (user, neighbour) pairs expanded at once when scoring (~20 bytes each)
EXPAND_PAIRS = 2**22


@dataclass
class ItemKNNConfig:
    """ItemKNN: shrunk cosine item-item similarity, top-k neighbours per item, scores = X_u · S (sparse; no SGD)."""

    name: str = doc("Model name.", "itemknn")
    neighbours: int = doc(
        "Neighbours k kept per item (the k most similar other items; capped at n_items - 1).",
        100,
        ge=1,
        le=10**7,
    )
    shrink: float = doc(
        "Shrinkage h in sim(i, j) = <x_i, x_j> / (‖x_i‖ ‖x_j‖ + h): damps similarities resting on few co-occurrences.",
        10.0,
        ge=0.0,
        le=1e12,
    )

    def validate(self, prefix: str = "model") -> None:
        if self.neighbours <= 0:
            raise ConfigError(f"{prefix}.neighbours must be positive, got {self.neighbours}")
        if self.shrink < 0:
            raise ConfigError(f"{prefix}.shrink must be >= 0, got {self.shrink}")


def top_k_similarities(
    x: sp.csr_matrix, k: int, shrink: float, block_bytes: int = BLOCK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """``(index, weight)``, both ``[n_items, k]``: row ``j`` holds item ``j``'s ``k`` most similar other items.

    ``sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrink)`` over the item columns of the
    binary ``x``; ties go to the lower item id; an item never neighbours itself.
    Items with fewer than ``k`` positive similarities are padded with weight 0.
    Computed in blocks of target items so that memory stays within ``block_bytes``
    (plus the sparse co-occurrence block) whatever the catalogue size.
    """
    n_items = x.shape[1]
    xt = sp.csr_matrix(x.T)
    xc = sp.csc_matrix(x)
    norms = np.sqrt(np.asarray(xc.sum(axis=0), dtype=np.float64).ravel())
    index = np.zeros((n_items, k), dtype=np.int64)
    weight = np.zeros((n_items, k), dtype=np.float32)
    block = max(1, block_bytes // (16 * n_items))
    for start in range(0, n_items, block):
        stop = min(n_items, start + block)
        # [block, n_items]: row j - start = co-occurrence counts of target item j with every item
        cooc = (xt[start:stop] @ xc).toarray().astype(np.float64)
        sim = cooc / (norms[start:stop, None] * norms[None, :] + shrink)
        sim[np.arange(stop - start), np.arange(start, stop)] = -1.0  # never its own neighbour
        order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        index[start:stop] = order
        weight[start:stop] = np.maximum(np.take_along_axis(sim, order, axis=1), 0.0)
    return index, weight


class ItemKNN(ClosedFormRecommender):
    r"""Item-based collaborative filtering (Sarwar et al., WWW 2001) with shrinkage.

    .. math::
        s_{ij} = \frac{\langle x_i, x_j \rangle}{\lVert x_i \rVert \lVert x_j \rVert + h}, \qquad
        \hat y_{uj} = \sum_{i \in N_k(j)} x_{ui}\, s_{ij}

    with :math:`x_i` the binary training column of item :math:`i` and :math:`N_k(j)`
    the :math:`k` items most similar to :math:`j` (ties to the lower id).  The
    similarity is kept sparse as two ``[n_items, k]`` buffers (neighbour ids and
    weights, saved in checkpoints) and computed in memory-bounded blocks.
    """

    name = "itemknn"
    config: ItemKNNConfig
    neighbour_index: torch.Tensor
    neighbour_weight: torch.Tensor
    config_class = ItemKNNConfig

    def __init__(
        self, n_users: int, n_items: int, config: ItemKNNConfig, train: sp.csr_matrix
    ) -> None:
        super().__init__(n_users, n_items, config, train)
        k = max(1, min(config.neighbours, n_items - 1))
        self.register_buffer("neighbour_index", torch.zeros(n_items, k, dtype=torch.long))
        self.register_buffer("neighbour_weight", torch.zeros(n_items, k))

    def _fit(self) -> dict[str, float]:
        index, weight = top_k_similarities(
            self.interactions, self.neighbour_index.shape[1], self.config.shrink
        )
        self.neighbour_index.copy_(torch.from_numpy(index))
        self.neighbour_weight.copy_(torch.from_numpy(weight))
        return {"nonzero_similarities": float((weight > 0).sum())}

    def _by_source(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``S`` as CSR arrays ``(crow, target, weight)`` by source item: row ``i`` = the items
        having ``i`` as a neighbour."""
        n_items, k = self.neighbour_index.shape
        target = torch.arange(n_items, device=self.neighbour_index.device).repeat_interleave(k)
        source, weight = self.neighbour_index.reshape(-1), self.neighbour_weight.reshape(-1)
        keep = weight > 0  # padding
        source, target, weight = source[keep], target[keep], weight[keep]
        order = torch.argsort(source, stable=True)
        crow = torch.zeros(n_items + 1, dtype=torch.long, device=source.device)
        crow[1:] = torch.cumsum(torch.bincount(source, minlength=n_items), 0)
        return crow, target[order], weight[order]

    def score(self, users: torch.Tensor, by_source=None) -> torch.Tensor:
        """``X_u · S`` from the users' sparse rows: each stored interaction adds its item's row of ``S``."""
        self._check_fitted()
        crow, target, weight = self._by_source() if by_source is None else by_source
        device = weight.device
        rows = self.interactions[users.detach().cpu().numpy()].tocoo()  # row-major
        user, item = torch.from_numpy(rows.row).to(device), torch.from_numpy(rows.col).to(device)
        start, count = crow[item], crow[item + 1] - crow[item]
        scores = torch.zeros(len(users) * self.n_items, device=device)
        # expand in chunks of interactions so that the (user, neighbour) pairs stay within EXPAND_PAIRS
        limits = torch.tensor(
            range(EXPAND_PAIRS, int(count.sum()), EXPAND_PAIRS), dtype=torch.long, device=device
        )
        bounds = torch.searchsorted(torch.cumsum(count, 0), limits)
        for chunk in torch.tensor_split(torch.arange(len(item), device=device), bounds.cpu()):
            c = count[chunk]
            offsets = torch.arange(int(c.sum()), device=device) - torch.repeat_interleave(
                torch.cumsum(c, 0) - c, c
            )
            pairs = torch.repeat_interleave(start[chunk], c) + offsets
            scores.index_add_(
                0,
                torch.repeat_interleave(user[chunk], c) * self.n_items + target[pairs],
                weight[pairs],
            )
        return scores.view(len(users), self.n_items)

    @torch.no_grad()
    def scorer(self) -> Scorer:
        self._check_fitted()
        by_source = self._by_source()  # once, not per batch
        return lambda users: self.score(users, by_source)
