"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import scipy.sparse as sp
import torch
from torch import nn

from graphrec.config_schema import doc
from graphrec.errors import ConfigError
from graphrec.models.base import LossOutput, Recommender
from graphrec.models.losses import bpr_loss, l2_penalty


@dataclass
class MFConfig:
    """Matrix factorisation (MF-BPR): a user and an item embedding table, dot-product scores."""

    name: str = doc("Model name.", "mf")
    embedding_dim: int = doc("Embedding size d.", 64, ge=1, le=65536)
    init: Literal["xavier_uniform", "normal"] = doc(
        "Embedding initialisation: `xavier_uniform`, or `normal` with std 0.1.", "xavier_uniform"
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


def init_embedding(weight: torch.Tensor, scheme: str) -> None:
    """Initialise an embedding table in place (``xavier_uniform`` or ``normal(0, 0.1)``)."""
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(weight)
    elif scheme == "normal":
        nn.init.normal_(weight, std=0.1)
    else:  # guarded by the config's Literal type
        raise ValueError(f"unknown init {scheme!r}")


class EmbeddingRecommender(Recommender):
    """Shared parts of models with one ego embedding per user and per item.

    Subclasses define :meth:`embeddings`; the BPR loss, with the L2 penalty on the
    batch's ego embeddings, is the same for all of them.
    """

    def __init__(self, n_users: int, n_items: int, config, train: sp.csr_matrix) -> None:
        super().__init__(n_users, n_items, config, train)
        self.user_embedding = nn.Embedding(n_users, config.embedding_dim)
        self.item_embedding = nn.Embedding(n_items, config.embedding_dim)
        init_embedding(self.user_embedding.weight, config.init)
        init_embedding(self.item_embedding.weight, config.init)
        # Set by the trainer from train.l2_weight unless the model config overrides it.
        self.l2_weight = 0.0 if config.l2_weight is None else config.l2_weight

    def set_l2_weight(self, weight: float) -> None:
        """Called by the trainer; a model-level ``l2_weight`` in the config wins."""
        if self.config.l2_weight is None:
            self.l2_weight = weight

    def loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> LossOutput:
        user_emb, item_emb = self.embeddings()
        u = user_emb[users]
        pos_scores = (u * item_emb[pos_items]).sum(-1)
        neg_scores = (u * item_emb[neg_items]).sum(-1)
        rank_loss = bpr_loss(pos_scores, neg_scores)
        reg = l2_penalty(
            self.user_embedding(users),
            self.item_embedding(pos_items),
            self.item_embedding(neg_items),
        )
        total = rank_loss + self.l2_weight * reg
        return LossOutput(total, {"bpr": rank_loss.detach(), "l2": reg.detach()})


class MF(EmbeddingRecommender):
    """MF-BPR: :math:`\\hat y_{ui} = e_u^\\top e_i` with ego embeddings only."""

    name = "mf"
    config_class = MFConfig

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_embedding.weight, self.item_embedding.weight
