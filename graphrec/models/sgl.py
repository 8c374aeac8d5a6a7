"""SGL: self-supervised graph learning (Wu et al., SIGIR 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.config_schema import doc
from graphrec.errors import ConfigError
from graphrec.models.gcl import GCLConfig, GCLRecommender
from graphrec.models.propagation import normalized_adjacency, propagate_directed


@dataclass
class SGLConfig(GCLConfig):
    """SGL: LightGCN + InfoNCE between two randomly thinned graphs, redrawn every epoch."""

    name: str = doc("Model name.", "sgl")
    augmentation: Literal["ed", "nd", "rw"] = doc(
        "View generator: `ed` edge dropout (one thinned graph per view), `nd` node dropout, `rw` "
        "random walk (a different thinned graph per layer).",
        "ed",
    )
    drop_ratio: float = doc(
        "Share of edges (ed, rw) or nodes (nd) dropped in each view (SGL's ssl_ratio; RLMRec's "
        "keep_rate 0.8 = drop 0.2).",
        0.1,
        ge=0.0,
        lt=1.0,
    )
    cl_items: Literal["pos", "pos_neg"] = doc(
        "Items contrasted besides the batch's unique users: unique positives (SGL, SELFRec) or "
        "unique positives and negatives (RLMRec's SGL).",
        "pos",
    )
    views: Literal["sgl", "rlmrec"] = doc(
        "How `ed` views are drawn: `sgl` = two sub-graphs per epoch, symmetric and re-normalised "
        "(SGL paper and code); `rlmrec` = redrawn at every batch, each direction of an edge kept "
        "independently and the kept entries of the normalised adjacency not re-normalised "
        "(RLMRec's / SSLRec's SpAdjEdgeDrop).",
        "sgl",
    )

    def validate(self, prefix: str = "model") -> None:
        super().validate(prefix)
        if not 0.0 <= self.drop_ratio < 1.0:
            raise ConfigError(f"{prefix}.drop_ratio must be in [0, 1), got {self.drop_ratio}")
        if self.views == "rlmrec" and self.augmentation != "ed":
            raise ConfigError(
                f"{prefix}.views=rlmrec applies to augmentation=ed only, got augmentation={self.augmentation!r}"
            )


class SGL(GCLRecommender):
    r"""SGL with edge dropout (ED), node dropout (ND) or random-walk (RW) views.

    Every epoch two sub-graphs :math:`s_1, s_2` of the training graph are drawn (ED:
    keep a random :math:`(1-\rho)` share of the interactions; ND: drop a :math:`\rho`
    share of users and of items with their edges; RW: one ED graph per layer) and
    re-normalised symmetrically, so propagation reuses the symmetric sparse product
    of :mod:`graphrec.models.propagation`.  The loss of a batch is

    .. math::
        \mathcal{L} = \mathcal{L}_{BPR}(E) + \lambda\,\big(\mathcal{L}_{NCE}(E'_U, E''_U)
            + \mathcal{L}_{NCE}(E'_I, E''_I)\big) + \mu\,\mathcal{L}_{2}

    with :math:`E` the LightGCN embeddings on the full graph, :math:`E', E''` those
    on the two views, and InfoNCE over the batch's unique users and items.

    By default this follows the SGL paper and code (per-epoch sub-graphs, symmetric,
    re-normalised).  RLMRec's implementation redraws the dropped edges at every batch,
    drops the two directions of an edge independently and does not re-normalise the
    kept entries; ``views="rlmrec"`` does that (the propagation is then not symmetric,
    so its backward uses the view's transpose).
    """

    name = "sgl"
    config_class = SGLConfig

    def __init__(self, n_users: int, n_items: int, config: SGLConfig, train: sp.csr_matrix) -> None:
        super().__init__(n_users, n_items, config, train)
        coo = sp.csr_matrix(train).tocoo()
        self._rows = coo.row.astype(np.int64)
        self._cols = coo.col.astype(np.int64)
        self._views: list | None = None
        if config.views == "rlmrec":
            full = self._adjacency_on(
                torch.device("cpu")
            )  # the normalised adjacency's entries, row-major
            self._entry_rows = torch.repeat_interleave(
                torch.arange(full.shape[0]), full.crow_indices().long().diff()
            )
            self._entry_cols = full.col_indices().long()
            self._entry_values = full.values()
            # entries in column-major order: the transpose of any subset, already sorted
            self._by_column = torch.from_numpy(
                np.lexsort((self._entry_rows.numpy(), self._entry_cols.numpy()))
            )

    # ----------------------------------------------------------------- views
    def _edge_subgraph(self, keep: np.ndarray) -> sp.csr_matrix:
        rows, cols = self._rows[keep], self._cols[keep]
        return sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(self.n_users, self.n_items)
        )

    def _edge_dropped(self, generator: torch.Generator) -> torch.Tensor:
        nnz = len(self._rows)
        n_keep = int(round(nnz * (1.0 - self.config.drop_ratio)))
        keep = torch.randperm(nnz, generator=generator)[:n_keep].numpy()
        return normalized_adjacency(self._edge_subgraph(np.sort(keep)))

    def _node_dropped(self, generator: torch.Generator) -> torch.Tensor:
        ratio = self.config.drop_ratio
        drop_u = torch.randperm(self.n_users, generator=generator)[
            : int(self.n_users * ratio)
        ].numpy()
        drop_i = torch.randperm(self.n_items, generator=generator)[
            : int(self.n_items * ratio)
        ].numpy()
        keep_u = np.ones(self.n_users, bool)
        keep_u[drop_u] = False
        keep_i = np.ones(self.n_items, bool)
        keep_i[drop_i] = False
        return normalized_adjacency(self._edge_subgraph(keep_u[self._rows] & keep_i[self._cols]))

    def _draw_view(self, generator: torch.Generator):
        aug = self.config.augmentation
        if aug == "ed":
            return self._edge_dropped(generator)
        if aug == "nd":
            return self._node_dropped(generator)
        return [self._edge_dropped(generator) for _ in range(self.num_layers)]

    def draw_epoch_views(self, generator: torch.Generator) -> None:
        if self.config.views == "rlmrec":
            return  # drawn per batch, from the private generator
        self._views = [self._draw_view(generator), self._draw_view(generator)]

    def _batch_view(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """RLMRec's view: every entry of the normalised adjacency kept with probability
        ``1 - drop_ratio`` independently (no re-normalisation); ``(view, its transpose)``."""
        rows, col, val = self._entry_rows, self._entry_cols, self._entry_values
        n = self.n_users + self.n_items
        keep = torch.rand(len(val), generator=self.rng()) >= self.config.drop_ratio

        def csr(r, c, v):
            crow = torch.zeros(n + 1, dtype=torch.int64)
            crow[1:] = torch.cumsum(torch.bincount(r, minlength=n), 0)
            return torch.sparse_csr_tensor(
                crow.int(), c.int(), v, size=(n, n), check_invariants=False
            ).to(device)

        forward = csr(rows[keep], col[keep], val[keep])
        t = self._by_column[keep[self._by_column]]
        return forward, csr(col[t], rows[t], val[t])

    def _encode_directed(self, view: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        x = self.ego()
        layers = [x]
        for _ in range(self.num_layers):
            x = propagate_directed(view[0], view[1], x)
            layers.append(x)
        return layers

    def views(self) -> list:
        """This epoch's two views, on the model's device (moved once per epoch)."""
        if self._views is None:  # loss() outside the trainer (tests)
            self.draw_epoch_views(self.rng())
        views = self._views
        if views is None:
            raise RuntimeError("SGL with views=rlmrec draws its view per batch, not per epoch")
        device = self.user_embedding.weight.device
        first = views[0][0] if isinstance(views[0], list) else views[0]
        if first.device != device:
            views = [
                [a.to(device) for a in v] if isinstance(v, list) else v.to(device) for v in views
            ]
            self._views = views
        return views

    # ------------------------------------------------------------------ loss
    def contrastive_loss(self, users, pos, neg):
        final = self.encode_combined()
        if self.config.views == "rlmrec":
            device = final.device
            view1, view2 = (
                self.combine(self._encode_directed(self._batch_view(device))) for _ in range(2)
            )
        else:
            view1, view2 = (self.encode_combined(v) for v in self.views())
        u, i = self.contrast_ids(users, pos, neg)
        return final, self.contrast(view1, view2, u, i)
