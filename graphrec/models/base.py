"""The model contract every graphrec recommender fulfils.

A model is a ``torch.nn.Module`` built from ``(n_users, n_items, config, train)``
where ``train`` is the ``[n_users, n_items]`` training CSR matrix.  It provides:

* :meth:`Recommender.embeddings` — final user and item representations
  ``([n_users, d], [n_items, d])`` (after propagation, for graph models);
* :meth:`Recommender.score` — scores of a batch of users against all items,
  ``[B, n_items]``;
* :meth:`Recommender.loss` — the training loss of a batch of
  (user, positive item, negative item) triples, as a :class:`LossOutput`.

The trainer and the evaluation harness only use these three methods (plus
:meth:`Recommender.scorer`), so any module honouring them — including the
alignment package's wrappers — trains and evaluates without changes.
``tests/models/test_contract.py`` checks every registered model against it.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import scipy.sparse as sp
import torch
from torch import nn

Scorer = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class LossOutput:
    """A training loss and its named parts (logged per epoch)."""

    loss: torch.Tensor
    parts: dict[str, float] = field(default_factory=dict)


class Recommender(nn.Module, abc.ABC):
    """Base class of all recommenders; see the module docstring for the contract."""

    #: registry name, e.g. ``"lightgcn"``
    name: ClassVar[str]
    #: the model's config dataclass
    config_class: ClassVar[type]

    def __init__(self, n_users: int, n_items: int, config, train: sp.csr_matrix) -> None:
        super().__init__()
        if train.shape != (n_users, n_items):
            raise ValueError(f"train matrix has shape {train.shape}, expected ({n_users}, {n_items})")
        self.n_users = n_users
        self.n_items = n_items
        self.config = config

    @abc.abstractmethod
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user and item representations, ``([n_users, d], [n_items, d])``."""

    @abc.abstractmethod
    def loss(self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor) -> LossOutput:
        """Training loss of a batch of ``[B]`` users, positive and negative items."""

    def on_epoch_start(self, epoch: int, generator: torch.Generator) -> None:
        """Hook called by the trainer before each epoch (1-based ``epoch``).

        Models that redraw something per epoch (e.g. SGL's edge-dropout views)
        do it here, drawing only from ``generator`` so that resumed runs stay
        identical to uninterrupted ones.  The default does nothing.
        """

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, n_items]`` of ``users`` (``[B]`` internal ids) against all items."""
        user_emb, item_emb = self.embeddings()
        return user_emb[users] @ item_emb.T

    @torch.no_grad()
    def scorer(self) -> Scorer:
        """A function ``users -> [B, n_items]`` scores with embeddings computed once.

        Graph propagation runs a single time here instead of once per user batch.
        The model is put in eval mode for the computation and restored afterwards.
        """
        was_training = self.training
        self.eval()
        try:
            user_emb, item_emb = self.embeddings()
        finally:
            self.train(was_training)
        user_emb, item_emb = user_emb.detach(), item_emb.detach()

        def score(users: torch.Tensor) -> torch.Tensor:
            return user_emb[users.to(user_emb.device)] @ item_emb.T

        return score

    def to_device(self, device: torch.device) -> "Recommender":
        """Move parameters and any sparse buffers to ``device``."""
        return self.to(device)
