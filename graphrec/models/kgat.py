"""KGAT: knowledge graph attention network (Wang et al., KDD 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.config_schema import doc
from graphrec.errors import ConfigError
from graphrec.knowledge import CollaborativeKG
from graphrec.models.base import LossOutput
from graphrec.models.kgbase import KGModelConfig, KGRecommender
from graphrec.models.losses import bpr_loss, kg_margin_bpr_loss, l2_penalty, transe_distance
from graphrec.models.propagation import propagate_directed, to_torch_csr


@dataclass
class KGATConfig(KGModelConfig):
    """KGAT: attentive bi-interaction propagation over the collaborative KG, trained jointly with a TransR KG loss."""

    name: str = doc("Model name.", "kgat")
    num_layers: int = doc("Number of propagation layers L.", 3, ge=0, le=64)
    relation_dim: int = doc("TransR relation space size k (KGAT: 64).", 64, ge=1, le=65536)
    dropout: float = doc(
        "Message dropout on each layer's output during training (KGAT: 0.1).", 0.1, ge=0.0, lt=1.0
    )
    kg_weight: float = doc(
        "Weight of the TransR KG loss added to every BPR batch (KGAT alternates the two phases; here they are summed).",
        1.0,
        ge=0.0,
        le=1e6,
    )
    kg_batch_size: int = doc(
        "KG triples (CKG edges, interactions included, as in KGAT) sampled per batch for the TransR loss.",
        2048,
        ge=1,
        le=2**31 - 1,
    )
    kg_l2_weight: float = doc(
        "L2 weight on the TransR-projected embeddings of the KG batch (KGAT: 1e-5).",
        1e-5,
        ge=0.0,
        le=1e6,
    )

    def validate(self, prefix: str = "model") -> None:
        super().validate(prefix)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{prefix}.dropout must be in [0, 1), got {self.dropout}")
        if self.relation_dim <= 0 or self.kg_batch_size <= 0:
            raise ConfigError(f"{prefix}.relation_dim and kg_batch_size must be positive")
        if self.kg_weight < 0:
            raise ConfigError(f"{prefix}.kg_weight must be >= 0, got {self.kg_weight}")


class KGAT(KGRecommender):
    r"""KGAT over users, items and KG entities.

    Each layer aggregates a node's neighbourhood with knowledge-aware attention and
    the bi-interaction aggregator:

    .. math::
        e_{N_h} = \sum_{(h,r,t)} \pi(h,r,t)\, e_t, \qquad
        \pi(h,r,t) = \operatorname{softmax}_{t \in N_h}\big((W_r e_t)^\top \tanh(W_r e_h + e_r)\big)

    .. math::
        e_h' = \operatorname{LeakyReLU}(W_1(e_h + e_{N_h})) + \operatorname{LeakyReLU}(W_2(e_h \odot e_{N_h}))

    Final representations combine :math:`e^{(0)}` and the L2-normalised layer outputs
    by ``layer_combination`` (KGAT concatenates them; summing keeps the contract's
    ``[n, embedding_dim]`` shape and scores are still dot products).  The loss of a
    batch is BPR + L2 plus ``kg_weight`` times TransR's
    :math:`-\ln\sigma(g(h,r,t') - g(h,r,t))` with
    :math:`g = \lVert W_r e_h + e_r - W_r e_t\rVert^2` on a sampled batch of CKG edges.

    As in KGAT, the attention is not differentiated by the recommendation loss: it is
    recomputed from the current parameters at the start of every epoch
    (:meth:`on_epoch_start`) and kept in the ``attention`` buffer, so a checkpoint
    restores exactly the model that was evaluated.  The CKG has the interaction
    relation and every KG relation in both directions.
    """

    name = "kgat"
    config: KGATConfig
    edge_index: torch.Tensor
    edge_type: torch.Tensor
    attention: torch.Tensor
    config_class = KGATConfig

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: KGATConfig,
        train: sp.csr_matrix,
        ckg: CollaborativeKG,
    ) -> None:
        super().__init__(n_users, n_items, config, train, ckg)
        d, k = config.embedding_dim, config.relation_dim
        edge_index, edge_type = self.ckg.edge_index(inverse=True)
        # group edges by head (row) so the attention softmax and the CSR share one order
        order = np.lexsort((edge_index[1].numpy(), edge_index[0].numpy()))
        self.register_buffer("edge_index", edge_index[:, order].contiguous(), persistent=False)
        self.register_buffer("edge_type", edge_type[order].contiguous(), persistent=False)
        n_types = self.ckg.num_edge_types
        self.relation_embedding = nn.Parameter(torch.empty(n_types, k))
        self.relation_projection = nn.Parameter(torch.empty(n_types, d, k))
        nn.init.xavier_uniform_(self.relation_embedding)
        nn.init.xavier_uniform_(self.relation_projection)
        self.w1 = nn.ModuleList(nn.Linear(d, d) for _ in range(config.num_layers))
        self.w2 = nn.ModuleList(nn.Linear(d, d) for _ in range(config.num_layers))
        self.num_layers = config.num_layers
        self.register_buffer("attention", torch.zeros(self.edge_index.shape[1]))
        self._rng: torch.Generator | None = None
        self._matrices: tuple[torch.Tensor, torch.Tensor] | None = None
        self.update_attention()

    # ----------------------------------------------------------- randomness
    def on_epoch_start(self, epoch: int, generator: torch.Generator) -> None:
        self._rng = torch.Generator().manual_seed(
            int(torch.randint(0, 2**63 - 1, (1,), generator=generator))
        )
        self.update_attention()

    def rng(self) -> torch.Generator:
        if self._rng is None:
            self._rng = torch.Generator().manual_seed(int(torch.randint(0, 2**63 - 1, (1,))))
        return self._rng

    # ------------------------------------------------------------ attention
    def _project(self, nodes: torch.Tensor, types: torch.Tensor, ego: torch.Tensor) -> torch.Tensor:
        """``W_r e`` for each (node, relation type) pair: ``[M, k]`` (one matrix product per type
        present, never a gathered ``[M, d, k]`` tensor)."""
        out = ego.new_empty(nodes.shape[0], self.relation_projection.shape[2])
        pieces = []
        for t in torch.unique(types).tolist():
            where = torch.nonzero(types == t).squeeze(1)
            pieces.append((where, ego[nodes[where]] @ self.relation_projection[t]))
        if not pieces:
            return out
        index = torch.cat([w for w, _ in pieces])
        values = torch.cat([v for _, v in pieces])
        return values[torch.argsort(index)]

    @torch.no_grad()
    def update_attention(self) -> None:
        """Recompute pi(h, r, t) for every CKG edge from the current parameters (chunked)."""
        from torch_geometric.utils import softmax

        ego = self.ego()
        heads, tails = self.edge_index
        logits = torch.empty(heads.shape[0], device=ego.device)
        chunk = 65536
        for start in range(0, heads.shape[0], chunk):
            sl = slice(start, start + chunk)
            types = self.edge_type[sl]
            wh = self._project(heads[sl], types, ego)
            wt = self._project(tails[sl], types, ego)
            logits[sl] = (wt * torch.tanh(wh + self.relation_embedding[types])).sum(-1)
        self.attention.copy_(softmax(logits, heads, num_nodes=self.n_nodes))
        self._matrices = None

    def _attention_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._matrices is None or self._matrices[0].device != self.attention.device:
            heads, tails = self.edge_index.cpu().numpy()
            values = self.attention.detach().cpu().numpy().astype(np.float32)
            n = self.n_nodes
            matrix = sp.csr_matrix((values, (heads, tails)), shape=(n, n))
            device = self.attention.device
            self._matrices = (to_torch_csr(matrix, device), to_torch_csr(matrix.T.tocsr(), device))
        return self._matrices

    def _load_from_state_dict(
        self, *args, **kwargs
    ):  # a loaded attention buffer invalidates the cached matrices
        self._matrices = None
        super()._load_from_state_dict(*args, **kwargs)

    # --------------------------------------------------------------- encoder
    def encode(self, dropout: bool) -> torch.Tensor:
        matrix, transposed = self._attention_matrices()
        x = self.ego()
        layers = [x]
        for layer in range(self.num_layers):
            neighbours = propagate_directed(matrix, transposed, x)
            x = F.leaky_relu(self.w1[layer](x + neighbours)) + F.leaky_relu(
                self.w2[layer](x * neighbours)
            )
            if dropout and self.config.dropout > 0:
                keep = (torch.rand(x.shape, generator=self.rng()) >= self.config.dropout).to(
                    x.device
                )
                x = x * keep / (1.0 - self.config.dropout)
            layers.append(F.normalize(x, dim=-1))
        total = layers[0]
        for out in layers[1:]:
            total = total + out
        if self.layer_combination == "mean":
            total = total / len(layers)
        return total

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.readout(self.encode(dropout=False))

    # ------------------------------------------------------------------ loss
    def kg_loss(self, ego: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """TransR loss and its L2 term on ``kg_batch_size`` CKG edges with corrupted tails."""
        g = self.rng()
        m = self.edge_index.shape[1]
        size = self.config.kg_batch_size
        pick = torch.randint(m, (size,), generator=g).to(ego.device)
        heads, tails, types = (
            self.edge_index[0, pick],
            self.edge_index[1, pick],
            self.edge_type[pick],
        )
        random_user = torch.randint(self.n_users, (size,), generator=g).to(ego.device)
        random_entity = (
            self.n_users + torch.randint(self.ckg.n_entities, (size,), generator=g)
        ).to(ego.device)
        # corrupt a user tail with a user, any other tail with an entity
        negatives = torch.where(tails < self.n_users, random_user, random_entity)
        wh = self._project(heads, types, ego)
        wt = self._project(tails, types, ego)
        wn = self._project(negatives, types, ego)
        r = self.relation_embedding[types]
        loss = kg_margin_bpr_loss(transe_distance(wh, r, wt), transe_distance(wh, r, wn))
        reg = l2_penalty(wh, r, wt, wn)
        return loss, reg

    def loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> LossOutput:
        final = self.encode(dropout=self.training)
        user_emb, item_emb = self.readout(final)
        u = user_emb[users]
        rank = bpr_loss((u * item_emb[pos_items]).sum(-1), (u * item_emb[neg_items]).sum(-1))
        reg = l2_penalty(
            self.user_embedding(users),
            self.item_embedding(pos_items),
            self.item_embedding(neg_items),
        )
        total = rank + self.l2_weight * reg
        parts: dict[str, float | torch.Tensor] = {"bpr": rank.detach(), "l2": reg.detach()}
        if self.config.kg_weight > 0:
            kg, kg_reg = self.kg_loss(self.ego())
            total = total + self.config.kg_weight * (kg + self.config.kg_l2_weight * kg_reg)
            parts["kg"] = kg.detach()
        return LossOutput(total, parts)
