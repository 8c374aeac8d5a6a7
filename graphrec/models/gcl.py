"""Shared parts of the graph contrastive learning (GCL) recommenders: SGL, SimGCL, XSimGCL.

All three are LightGCN encoders trained with BPR plus an InfoNCE term between two
views of the batch's unique users and items (the contrast never runs over all
``n_users``/``n_items`` nodes).  They differ in how the views are made:

* SGL (:mod:`graphrec.models.sgl`): two randomly thinned graphs per epoch;
* SimGCL (:mod:`graphrec.models.simgcl`): random noise added to every layer;
* XSimGCL: one noisy forward pass, contrasting its final and one intermediate layer.

Randomness and resumability: per-epoch randomness (SGL's graphs) is drawn from the
trainer's generator in :meth:`~graphrec.models.base.Recommender.on_epoch_start`;
per-batch randomness (noise, dropout) from a private generator that is re-seeded
there with a seed drawn from the trainer's generator.  A run resumed at an epoch
boundary therefore draws exactly what an uninterrupted run draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import scipy.sparse as sp
import torch

from graphrec.config_schema import doc
from graphrec.errors import ConfigError
from graphrec.models.base import LossOutput
from graphrec.models.lightgcn import LightGCN, LightGCNConfig
from graphrec.models.losses import bpr_loss, info_nce, l2_parameters, l2_penalty
from graphrec.models.propagation import propagate, propagate_sum


@dataclass
class GCLConfig(LightGCNConfig):
    """Base of the contrastive configs (not registered itself)."""

    include_ego: bool = doc(
        "Whether layer 0 (the ego embeddings) enters the layer combination: true in LightGCN, SGL "
        "and RLMRec's SimGCL; false in the SimGCL/XSimGCL reference code (SELFRec).",
        True,
    )
    cl_weight: float = doc("Weight of the InfoNCE contrastive term (lambda).", 0.1, ge=0.0, le=1e6)
    temperature: float = doc("InfoNCE temperature tau.", 0.2, gt=0.0, le=1e6)
    cl_items: Literal["pos", "pos_neg"] = doc(
        "Items contrasted besides the batch's unique users: unique positives (SELFRec, RLMRec's "
        "SimGCL) or unique positives and negatives (RLMRec's SGL).",
        "pos",
    )
    cl_negatives: Literal["batch", "all"] = doc(
        "InfoNCE denominator: the other contrasted nodes of the batch (SELFRec; O(n^2 d)) or "
        "every user / every item of the second view (RLMRec's cal_infonce_loss; O(n N d)).",
        "batch",
    )
    l2_scope: Literal["batch", "parameters"] = doc(
        "L2 penalty form: `batch` = squared norms of the batch's ego embeddings / (2B) (LightGCN, "
        "the trainer's convention); `parameters` = squared norms of all parameters, not divided "
        "by B (RLMRec's `reg_params`).",
        "batch",
    )

    def validate(self, prefix: str = "model") -> None:
        super().validate(prefix)
        if self.cl_weight < 0:
            raise ConfigError(f"{prefix}.cl_weight must be >= 0, got {self.cl_weight}")
        if self.temperature <= 0:
            raise ConfigError(f"{prefix}.temperature must be positive, got {self.temperature}")
        if not self.include_ego and self.num_layers == 0:
            raise ConfigError(f"{prefix}.include_ego=false needs num_layers >= 1")


def seed_from(generator: torch.Generator) -> int:
    """A 63-bit seed drawn from ``generator`` (advances it by one draw)."""
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator))


class GCLRecommender(LightGCN):
    """LightGCN encoder + BPR + InfoNCE; subclasses implement :meth:`contrastive_loss`.

    ``embeddings()`` (evaluation) is the clean LightGCN forward pass with this
    model's layer combination.
    """

    config_class = GCLConfig

    def __init__(self, n_users: int, n_items: int, config: GCLConfig, train: sp.csr_matrix) -> None:
        super().__init__(n_users, n_items, config, train)
        self.include_ego = config.include_ego
        self._rng: torch.Generator | None = None

    # ------------------------------------------------------------ randomness
    def on_epoch_start(self, epoch: int, generator: torch.Generator) -> None:
        self._rng = torch.Generator().manual_seed(seed_from(generator))
        self.draw_epoch_views(generator)

    def draw_epoch_views(self, generator: torch.Generator) -> None:
        """Per-epoch augmentation drawn from the trainer's generator (SGL); default none."""

    def rng(self) -> torch.Generator:
        """The private per-batch generator (seeded from torch's global RNG when
        :meth:`loss` runs outside the trainer, e.g. in tests)."""
        if self._rng is None:
            self._rng = torch.Generator().manual_seed(int(torch.randint(0, 2**63 - 1, (1,))))
        return self._rng

    def rand(self, *shape: int, device: torch.device) -> torch.Tensor:
        return torch.rand(*shape, generator=self.rng()).to(device)

    # ---------------------------------------------------------------- encoder
    def ego(self) -> torch.Tensor:
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight], dim=0)

    def combine(self, layers: Sequence[torch.Tensor]) -> torch.Tensor:
        """Sum or mean of the layers (layer 0 included when ``include_ego``)."""
        used = layers if self.include_ego else layers[1:]
        total = used[0]
        for layer in used[1:]:
            total = total + layer
        if self.layer_combination == "mean":
            total = total / len(used)
        return total

    def encode(
        self, adjacency: torch.Tensor | Sequence[torch.Tensor] | None = None, noise_eps: float = 0.0
    ) -> list[torch.Tensor]:
        """Layers ``[E0, E1, ..., EL]`` of a forward pass.

        Args:
            adjacency: one normalised adjacency, a list of one per layer (SGL-RW), or
                ``None`` for the training graph.
            noise_eps: SimGCL's noise magnitude: ``E_l += eps * sign(E_l) * normalize(U(0,1))``
                after each propagation (layer 0 is never perturbed).
        """
        x = self.ego()
        if adjacency is None:
            adjacency = self._adjacency_on(x.device)
        per_layer = (
            [adjacency] * self.num_layers
            if isinstance(adjacency, torch.Tensor)
            else list(adjacency)
        )
        layers = [x]
        for a in per_layer[: self.num_layers]:
            x = propagate(a.to(x.device) if a.device != x.device else a, x)
            if noise_eps > 0:
                noise = torch.nn.functional.normalize(self.rand(*x.shape, device=x.device), dim=-1)
                # sign() has a zero gradient: the noise term is built outside autograd (the same
                # values; the backward skips two products and a zero-filled gradient per layer)
                x = x + noise_eps * torch.sign(x.detach()) * noise
            layers.append(x)
        return layers

    def encode_combined(self, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        r"""``combine(encode(adjacency))`` without noise, for one symmetric adjacency.

        With layer 0 included this is LightGCN's polynomial :math:`\sum_l \hat A^l E_0`
        (divided by ``L + 1`` for ``mean``), run as one autograd node
        (:func:`~graphrec.models.propagation.propagate_sum`: the same sums in the same
        order, so the same values, without keeping ``L`` layers and their graph).
        """
        if not self.include_ego or isinstance(adjacency, (list, tuple)):
            return self.combine(self.encode(adjacency))
        x = self.ego()
        if adjacency is None:
            adjacency = self._adjacency_on(x.device)
        elif adjacency.device != x.device:
            adjacency = adjacency.to(x.device)
        total = propagate_sum(adjacency, x, self.num_layers)
        return total / (self.num_layers + 1) if self.layer_combination == "mean" else total

    def split(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return nodes[: self.n_users], nodes[self.n_users :]

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.encode_combined())

    # ------------------------------------------------------------------ loss
    def regularization(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        if self.config.l2_scope == "parameters":
            return l2_parameters(self)
        return l2_penalty(
            self.user_embedding(users), self.item_embedding(pos), self.item_embedding(neg)
        )

    def contrast_ids(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's unique users and unique items to contrast."""
        items = pos if self.config.cl_items == "pos" else torch.cat([pos, neg])
        return torch.unique(users), torch.unique(items)

    def contrast(
        self, view1: torch.Tensor, view2: torch.Tensor, users: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor:
        """InfoNCE over unique ``users`` plus over unique ``items`` between two node views."""
        u1, i1 = self.split(view1)
        u2, i2 = self.split(view2)
        t = self.config.temperature
        every = self.config.cl_negatives == "all"
        # index_select: row gathers whose backward is one index_add_ (faster than advanced indexing)
        return info_nce(
            u1.index_select(0, users), u2.index_select(0, users), t, u2 if every else None
        ) + info_nce(i1.index_select(0, items), i2.index_select(0, items), t, i2 if every else None)

    def bpr_and_reg(
        self, final: torch.Tensor, users, pos, neg
    ) -> tuple[torch.Tensor, torch.Tensor]:
        user_emb, item_emb = self.split(final)
        u = user_emb.index_select(0, users)
        rank = bpr_loss(
            (u * item_emb.index_select(0, pos)).sum(-1), (u * item_emb.index_select(0, neg)).sum(-1)
        )
        return rank, self.regularization(users, pos, neg)

    def contrastive_loss(self, users, pos, neg) -> tuple[torch.Tensor, torch.Tensor]:
        """``(final node embeddings used by BPR, contrastive loss)`` of a batch."""
        raise NotImplementedError

    def loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> LossOutput:
        final, cl = self.contrastive_loss(users, pos_items, neg_items)
        rank, reg = self.bpr_and_reg(final, users, pos_items, neg_items)
        total = rank + self.config.cl_weight * cl + self.l2_weight * reg
        return LossOutput(
            total,
            {"bpr": rank.detach(), "cl": cl.detach(), "l2": reg.detach()},
        )
