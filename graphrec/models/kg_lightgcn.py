"""KG-LightGCN: LightGCN over the collaborative knowledge graph with relation-specific weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.config_schema import doc
from graphrec.knowledge import CollaborativeKG
from graphrec.models.kgbase import KGModelConfig, KGRecommender
from graphrec.models.propagation import sparse_dense_mm, symmetric_normalize, to_torch_csr


@dataclass
class KGLightGCNConfig(KGModelConfig):
    """KG-LightGCN: parameter-free propagation over users + items + KG entities, one learned weight per relation."""

    name: str = doc("Model name.", "kglightgcn")
    relation_weights: Literal["shared", "per_layer", "fixed"] = doc(
        "Relation weights w_r > 0 (softplus, start at 1): one per relation (`shared`), one per "
        "relation and layer (`per_layer`), or all 1 (`fixed`: plain LightGCN on the CKG).",
        "shared",
    )
    normalization: Literal["joint", "per_relation"] = doc(
        "`joint`: D_w^-1/2 A_w D_w^-1/2 with A_w = A_0 + sum_r w_r A_r and D_w its degrees, "
        "recomputed as the weights move (the weights shift the mix between interactions and "
        "relations, never the scale); `per_relation`: each relation's block normalised by its own "
        "degrees, then weighted (the interaction block is exactly LightGCN's, but weights above 1 "
        "inflate the propagated embeddings).",
        "joint",
    )


_SOFTPLUS_ONE = float(np.log(np.expm1(1.0)))  # softplus(x) = 1


class _Structure:
    """A symmetric sparse matrix whose entries belong to typed blocks: CSR arrays, the
    fixed value of each entry, its block type and each node's degree in each block."""

    def __init__(self, matrix: sp.csr_matrix, types: np.ndarray) -> None:
        self.size = matrix.shape
        self.n_types = int(types.max()) + 1 if len(types) else 1
        coo = matrix.tocoo()
        degrees = np.zeros((matrix.shape[0], self.n_types), np.float32)
        np.add.at(degrees, (coo.row, types), coo.data)
        self.degrees = torch.from_numpy(degrees)  # [N, T]: row sums of each block
        # int32 CSR indices when they fit: MKL's sparse BLAS would convert int64 ones on every product
        index = np.int32 if max(matrix.nnz, *matrix.shape) < np.iinfo(np.int32).max else np.int64
        self.crow = torch.from_numpy(matrix.indptr.astype(index))
        self.col = torch.from_numpy(matrix.indices.astype(index))
        self.row = torch.repeat_interleave(torch.arange(matrix.shape[0]), self.crow.diff().long())
        self.base = torch.from_numpy(matrix.data.astype(np.float32))
        self.types = torch.from_numpy(types.astype(np.int64))
        # every (row, type) pair with entries, stacked: row k of `stacked` holds the entries of
        # type stacked_types[k] in row stacked_rows[k] (one sparse product gives all B_t x rows)
        pairs, local = np.unique(np.stack([types, coo.row]), axis=1, return_inverse=True)
        local = local.ravel()
        self.stacked_types = torch.from_numpy(pairs[0].astype(np.int64))
        self.stacked_rows = torch.from_numpy(pairs[1].astype(np.int64))
        self.stacked = to_torch_csr(
            sp.csr_matrix((coo.data, (local, coo.col)), shape=(pairs.shape[1], matrix.shape[1]))
        )

    def to(self, device: torch.device) -> _Structure:
        for name in (
            "crow",
            "col",
            "row",
            "base",
            "types",
            "degrees",
            "stacked_types",
            "stacked_rows",
            "stacked",
        ):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                self.crow, self.col, values, size=self.size, check_invariants=False
            )


class _RelationWeightedSpMM(torch.autograd.Function):
    r"""``(sum_t w_t A_t) @ x`` for symmetric blocks ``A_t`` sharing one CSR structure.

    Backward: ``grad_x = A_w grad`` (``A_w`` is symmetric, as in
    :class:`~graphrec.models.propagation.SymmetricSpMM`) and
    ``grad_w[t] = <grad[rows_t], B_t x>`` with ``B_t`` the rows of block ``t`` only, all
    types in one sparse product over a stacked ``[(row, type) pairs, N]`` matrix (no
    ``[N, d]`` intermediate per relation).
    """

    @staticmethod
    def forward(ctx, structure: _Structure, weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        matrix = structure.matrix(structure.base * weights[structure.types])
        ctx.structure, ctx.matrix = structure, matrix
        ctx.save_for_backward(weights, x)
        return sparse_dense_mm(matrix, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        weights, x = ctx.saved_tensors
        s = ctx.structure
        grad = grad.contiguous()
        grad_x = sparse_dense_mm(ctx.matrix, grad) if ctx.needs_input_grad[2] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            per_pair = (grad[s.stacked_rows] * sparse_dense_mm(s.stacked, x)).sum(1)
            grad_w = torch.zeros_like(weights).index_add_(0, s.stacked_types, per_pair)
        return None, grad_w, grad_x


class KGLightGCN(KGRecommender):
    r"""LightGCN on the collaborative KG, each relation's messages scaled by a learned weight.

    .. math::
        A_w = A_0 + \sum_{r=1}^{R} w_r^{(l)} A_r, \qquad
        E^{(l+1)} = D_w^{-1/2} A_w D_w^{-1/2} E^{(l)}, \qquad
        w_r = \operatorname{softplus}(\theta_r)

    where :math:`A_0` holds the user-item interactions, :math:`A_r` the edges of KG
    relation :math:`r` (both directions, so every block is symmetric) and :math:`D_w`
    the weighted degrees (``normalization="joint"``).  Because :math:`D_w` follows the
    weights, the propagation's spectral radius stays 1 whatever the :math:`w_r`: they
    move the balance between interactions and relations, never the embeddings' scale
    (scale would be a free way round the L2 penalty).
    All blocks share one CSR structure whose values are rescaled by the weights at
    each forward pass; the backward reuses the symmetric matrix for ``x`` (as
    :mod:`graphrec.models.propagation` does) and a sampled dense-dense product for
    the weights.  A relation
    that hurts can learn :math:`w_r \to 0`; single triples are pruned before training
    by score (``kg_min_score`` / ``kg_drop_fraction``).  Users and items are read out
    of the combined layers; scores are dot products.
    """

    name = "kglightgcn"
    config_class = KGLightGCNConfig

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: KGLightGCNConfig,
        train: sp.csr_matrix,
        ckg: CollaborativeKG,
    ) -> None:
        super().__init__(n_users, n_items, config, train, ckg)
        self.num_layers = config.num_layers
        self.structure = self._build_structure(config.normalization)
        n_rel = self.ckg.n_relations
        if config.relation_weights == "fixed" or n_rel == 0:
            self.relation_logits = None
        else:
            rows = config.num_layers if config.relation_weights == "per_layer" else 1
            self.relation_logits = nn.Parameter(torch.full((max(rows, 1), n_rel), _SOFTPLUS_ONE))

    def _build_structure(self, normalization: str) -> _Structure:
        """All blocks (0 = interactions, r + 1 = KG relation r) in one CSR, entries typed."""
        ckg = self.ckg
        n = ckg.n_nodes
        users, items = ckg.interactions()
        pieces = [(users, ckg.n_users + items)]
        for r in range(ckg.n_relations):
            of_r = ckg.relations == r
            pieces.append((ckg.n_users + ckg.heads[of_r], ckg.n_users + ckg.tails[of_r]))
        blocks = []
        for rows, cols in pieces:
            upper = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
            both = (upper + upper.T).tocsr()
            both.data[:] = 1.0
            blocks.append(both)
        if normalization == "per_relation":
            blocks = [symmetric_normalize(b) for b in blocks]
        # `joint` keeps the 0/1 blocks: their normalisation depends on the weights (embeddings())
        coo = [b.tocoo() for b in blocks]
        rows = np.concatenate([c.row for c in coo])
        cols = np.concatenate([c.col for c in coo])
        vals = np.concatenate([c.data for c in coo]).astype(np.float32)
        types = np.concatenate([np.full(c.nnz, t, np.int64) for t, c in enumerate(coo)])
        order = np.lexsort(
            (types, cols, rows)
        )  # row-major; a pair in two relations keeps two entries
        rows, cols, vals, types = rows[order], cols[order], vals[order], types[order]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
        matrix = sp.csr_matrix((vals, cols, indptr), shape=(n, n))
        return _Structure(matrix, types)

    def relation_weights(self) -> torch.Tensor | None:
        """``[layers or 1, R]`` positive weights of the KG relations (``None`` when fixed)."""
        return None if self.relation_logits is None else F.softplus(self.relation_logits)

    def to_device(self, device: torch.device):
        self.structure.to(device)
        return super().to_device(device)

    def _layer_weights(self, layer: int, like: torch.Tensor) -> torch.Tensor:
        """``[R + 1]`` block weights of one layer: 1 for the interactions, then ``w_r``."""
        one = like.new_ones(1)
        weights = self.relation_weights()
        if weights is None:
            return one.expand(self.structure.n_types)
        return torch.cat([one, weights[min(layer, weights.shape[0] - 1)]])

    def _propagate(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        s = self.structure
        if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
            return _RelationWeightedSpMM.apply(s, w, x)
        return sparse_dense_mm(s.matrix(s.base * w[s.types]), x)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.ego()
        if self.structure.base.device != x.device:
            self.structure.to(x.device)
        total = x
        for layer in range(self.num_layers):
            w = self._layer_weights(layer, x)
            if self.config.normalization == "joint":
                # D_w^-1/2 A_w D_w^-1/2 x: the weighted degrees follow the weights, so raising every
                # w_r cannot scale embeddings up past the L2 penalty (with the 0/1 blocks normalised
                # once, learned weights grew to ~3 and cost 10-14% Recall@20)
                degree = self.structure.degrees @ w
                scale = torch.where(
                    degree > 0, degree.clamp_min(1e-12).rsqrt(), torch.zeros_like(degree)
                ).unsqueeze(1)
                x = scale * self._propagate(w, scale * x)
            else:
                x = self._propagate(w, x)
            total = total + x
        if self.layer_combination == "mean":
            total = total / (self.num_layers + 1)
        return self.readout(total)
