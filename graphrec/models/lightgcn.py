"""LightGCN (He et al., SIGIR 2020) with a fast symmetric sparse propagation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import scipy.sparse as sp
import torch

from graphrec.config_schema import doc
from graphrec.errors import ConfigError
from graphrec.models.base import LossOutput
from graphrec.models.losses import gathered_bpr_l2
from graphrec.models.mf import EmbeddingRecommender
from graphrec.models.propagation import normalized_adjacency, propagate_sum


@dataclass
class LightGCNConfig:
    """LightGCN: parameter-free propagation over the normalised user-item graph."""

    name: str = doc("Model name.", "lightgcn")
    embedding_dim: int = doc("Embedding size d.", 64, ge=1, le=65536)
    num_layers: int = doc("Number of propagation layers L.", 3, ge=0, le=64)
    layer_combination: Literal["mean", "sum"] = doc(
        "Combine layers 0..L by `mean` (LightGCN paper, PyG) or `sum` (RLMRec).", "mean"
    )
    init: Literal["xavier_uniform", "normal"] = doc(
        "Embedding initialisation: `xavier_uniform` (PyG, RLMRec), or `normal` with std 0.1 (LightGCN's code).",
        "xavier_uniform",
    )
    l2_weight: float | None = doc(
        "Overrides `train.l2_weight` for this model; null = use the trainer's value.",
        None,
        ge=0.0,
        le=1e6,
    )

    def validate(self, prefix: str = "model") -> None:
        if self.embedding_dim <= 0:
            raise ConfigError(f"{prefix}.embedding_dim must be positive, got {self.embedding_dim}")
        if self.num_layers < 0:
            raise ConfigError(f"{prefix}.num_layers must be >= 0, got {self.num_layers}")


class LightGCN(EmbeddingRecommender):
    r"""LightGCN over the bipartite user-item graph.

    .. math::
        E^{(l+1)} = \hat A E^{(l)}, \qquad
        E = \operatorname{combine}\big(E^{(0)}, \dots, E^{(L)}\big)

    where :math:`\hat A` is the symmetric-normalised adjacency (users then items,
    see :mod:`graphrec.models.propagation`) and ``combine`` is the mean (paper,
    PyG's :class:`~torch_geometric.nn.models.LightGCN`) or the sum (RLMRec).
    Scores are :math:`\hat y_{ui} = e_u^\top e_i`.  Layer-wise results agree with
    stacking PyG's :class:`~torch_geometric.nn.conv.LGConv` (tested).

    Args:
        n_users, n_items: graph sizes.
        config: :class:`LightGCNConfig`.
        train: ``[n_users, n_items]`` CSR matrix of training interactions.
    """

    name = "lightgcn"
    config_class = LightGCNConfig

    def __init__(
        self, n_users: int, n_items: int, config: LightGCNConfig, train: sp.csr_matrix
    ) -> None:
        super().__init__(n_users, n_items, config, train)
        self.num_layers = config.num_layers
        self.layer_combination = config.layer_combination
        # Derived from the training data, so kept out of the state dict.
        self.adjacency = normalized_adjacency(train)

    def _adjacency_on(self, device: torch.device) -> torch.Tensor:
        if self.adjacency.device != device:
            self.adjacency = self.adjacency.to(device)
        return self.adjacency

    def propagate_layers(self, ego: torch.Tensor) -> torch.Tensor:
        """Propagate ``ego`` (``[n_users + n_items, d]``) and combine the L+1 layers."""
        total = propagate_sum(self._adjacency_on(ego.device), ego, self.num_layers)
        if self.layer_combination == "mean":
            total = total / (self.num_layers + 1)
        return total

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)
        out = self.propagate_layers(ego)
        return out[: self.n_users], out[self.n_users :]

    def loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> LossOutput:
        """BPR on the propagated embeddings + L2 on the batch's ego embeddings.

        The same loss as :meth:`EmbeddingRecommender.loss` (to float rounding); the
        batch's rows are taken from the node tables by :func:`gathered_bpr_l2`, which forms
        the scores, the L2 penalty and their gradients block by block, so no ``[B, d]``
        intermediate is held or streamed through memory (on the 1M-user graph of
        ``benchmarks/scaling.py`` the batch has 1.3M rows, as many as the node table).
        """
        if type(self).embeddings is not LightGCN.embeddings:  # a subclass changed the encoder
            return super().loss(users, pos_items, neg_items)
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)
        nodes = self.propagate_layers(ego)
        rank_loss, reg = gathered_bpr_l2(
            nodes, ego, users, pos_items + self.n_users, neg_items + self.n_users
        )
        total = rank_loss + self.l2_weight * reg
        return LossOutput(total, {"bpr": rank_loss.detach(), "l2": reg.detach()})
