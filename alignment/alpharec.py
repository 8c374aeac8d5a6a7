r"""Language-space collaborative filtering (AlphaRec-style): items *are* their text embeddings.

``alpharec`` (:class:`AlphaRec`, after Sheng et al., "Language Representations Can be What
Recommenders Need", ICLR 2025) has no item or user ID embeddings.  Its only parameters are an
MLP that maps frozen sentence-encoder embeddings into a collaborative space:

.. math::
    z_u = \frac{1}{|\mathcal N_u|}\sum_{i \in \mathcal N_u} z_i, \qquad
    E^{(0)} = \operatorname{MLP}\big([z_u]_u \,\|\, [z_i]_i\big), \qquad
    E = \frac{1}{L+1}\sum_{l=0}^{L} \hat A^{l} E^{(0)},

with :math:`z_i` the L2-normalised ``[d_text]`` text embedding of item :math:`i`, :math:`z_u` the
mean over the user's training items, :math:`\hat A` LightGCN's symmetric-normalised user-item
adjacency and ``MLP`` = Linear → LeakyReLU → Linear.  Scores are cosines,
:math:`\hat y_{ui} = \cos(e_u, e_i)` (:meth:`AlphaRec.embeddings` returns unit rows), trained with
InfoNCE at temperature :math:`\tau`:

.. math::
    \mathcal L = -\frac1B \sum_{b} \log
        \frac{\exp(\hat y_{u_b p_b}/\tau)}{\sum_{c \in \mathcal C} \exp(\hat y_{u_b c}/\tau)},

where the candidate set :math:`\mathcal C` holds every positive and sampled negative item of the
batch (``2B`` items: in-batch negatives plus the trainer's uniform negatives); a candidate equal to
the row's own positive elsewhere in the batch is masked, so an item is never its own negative.
The logits are computed once per distinct candidate, weighted by its number of copies
(:func:`candidate_logits`; the same loss, and far fewer logits when the catalogue is small).

Because an item's representation is a function of its text only, an item without training
interactions is scored zero-shot: its layer-0 embedding is the MLP of its text and, having no edges,
it keeps that direction through propagation.  :meth:`AlphaRec.score_new_items` does this from raw
texts (encoded with the model's encoder): exactly the score the item would get had it been in the
catalogue without interactions.

A new user (:meth:`AlphaRec.fold_in`, used by :mod:`graphrec.inference` for users not in the training
data) is embedded the model's own way: :math:`e_u^{(0)} = \operatorname{MLP}(z_u)` from the mean text of
their items, then :math:`e_u^{(l)} = \sum_{j \in I_u} e_j^{(l-1)} / \sqrt{|I_u|(d_j + 1)}` (the rows
of :math:`\hat A` once the user's edges are added; ``d_j``: item ``j``'s training degree), averaged over
layers and normalised.  The items' layer embeddings are the trained graph's (the new user does not
propagate into them), so with ``num_layers`` ≤ 1 this is exactly the user's embedding in the graph
with the user added.

Item texts and their embeddings are those of ``text_ease`` (:func:`alignment.linear.item_text_embeddings`,
on-disk cache); they are non-persistent buffers, so checkpoints hold the MLP only.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from alignment.linear import (
    ItemTextInput,
    ItemTextMode,
    ItemTexts,
    NewItemEncoder,
    cache_dir_field,
    checked_item_embeddings,
    encode_item_texts,
    encoder_field,
    item_text_field,
    item_text_key,
    kg_field,
    prepare_item_embeddings,
)
from graphrec.config_schema import doc
from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError
from graphrec.models.base import InputCache, LossOutput, Recommender, sparse_csr
from graphrec.models.propagation import normalized_adjacency, propagate_sum, sparse_dense_mm
from graphrec.optional import TEXT_MODULES


@dataclass
class AlphaRecConfig:
    """Items and users as MLP-projected text embeddings, LightGCN propagation, cosine InfoNCE (no ID embeddings)."""

    name: str = doc("Model name.", "alpharec")
    embedding_dim: int = doc(
        "Output size of the MLP (the collaborative space).", 64, ge=1, le=65536
    )
    hidden_dim: int = doc("Hidden size of the two-layer MLP.", 256, ge=1, le=65536)
    num_layers: int = doc(
        "LightGCN propagation layers L on top of the projected embeddings (0 = none).",
        2,
        ge=0,
        le=64,
    )
    temperature: float = doc("InfoNCE temperature τ on cosine scores.", 0.15, gt=0.0, le=100.0)
    item_text: ItemTextMode = item_text_field()
    kg: str | None = kg_field()
    encoder: str = encoder_field()
    cache_dir: str | None = cache_dir_field()

    def validate(self, prefix: str = "model") -> None:
        for key in ("embedding_dim", "hidden_dim"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{prefix}.{key} must be positive, got {getattr(self, key)}")
        if self.num_layers < 0:
            raise ConfigError(f"{prefix}.num_layers must be >= 0, got {self.num_layers}")
        if not self.temperature > 0:
            raise ConfigError(f"{prefix}.temperature must be positive, got {self.temperature}")


def mean_item_rows(train: sp.csr_matrix, item_vectors: np.ndarray) -> np.ndarray:
    """``[n_users, d]``: each user's mean of ``item_vectors`` over their training items (zeros if none)."""
    binary = sp.csr_matrix(train, dtype=np.float32, copy=True)
    binary.sum_duplicates()
    binary.data[:] = 1.0
    degree = np.asarray(binary.sum(axis=1)).ravel()
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return np.asarray(sp.diags(inverse) @ binary @ item_vectors, dtype=np.float32)


def candidate_logits(
    user_rows: torch.Tensor,
    item_emb: torch.Tensor,
    pos_items: torch.Tensor,
    neg_items: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""InfoNCE logits of a batch over its candidate set, one column per *distinct* candidate.

    The candidate set is the ``2B`` items ``pos_items ‖ neg_items``, duplicates included, and row
    ``b``'s own positive counts once (its other copies are masked). An item that appears :math:`m`
    times contributes :math:`m\,e^{s}` = :math:`e^{s + \log m}` to the softmax's denominator, so one
    column per distinct item with :math:`\log m` added (:math:`\log 1 = 0` at the row's positive)
    gives the same loss and gradients from ``B × n_distinct`` logits instead of ``B × 2B``. On a
    catalogue smaller than ``2B`` items (amazon18-scientific: 4,344 items against 8,192 candidates
    at batch size 4,096) that is most of the training step.

    Args:
        user_rows: ``[B, d]`` the batch's user embeddings (already divided by the temperature).
        item_emb: ``[n_items, d]`` every item's embedding.
        pos_items, neg_items: ``[B]`` the batch's positive and sampled negative items.

    Returns:
        ``([B, n_distinct] logits, [B] column of each row's positive)`` for ``F.cross_entropy``.
    """
    distinct, slot, counts = torch.unique(
        torch.cat([pos_items, neg_items]), return_inverse=True, return_counts=True
    )
    target = slot[: len(pos_items)]
    log_copies = torch.log(counts.to(user_rows.dtype))
    logits = torch.addmm(log_copies, user_rows, item_emb.index_select(0, distinct).T)
    # the row's own positive counts once; a constant shift, so the gradients are unchanged
    rows = torch.arange(len(pos_items), device=logits.device)
    logits.index_put_((rows, target), -log_copies[target], accumulate=True)
    return logits, target


class AlphaRec(Recommender):
    """AlphaRec-style text-native recommender; see the module docstring.

    Args:
        n_users, n_items, config, train: as for every model (:class:`AlphaRecConfig`).
        item_embeddings: ``[n_items, d_text]`` text embeddings of the items (what :meth:`prepare`
            encodes from the dataset; benchmarks and tests that share one encoding pass their own).
    """

    name = "alpharec"
    requires = TEXT_MODULES  # the `text` extra: sentence-transformers and the embedded encoder
    config_class = AlphaRecConfig
    config: AlphaRecConfig
    user_text: torch.Tensor
    item_text: torch.Tensor

    @classmethod
    def inputs_key(cls, config: AlphaRecConfig) -> Hashable:
        return item_text_key(config)

    @classmethod
    def prepare(
        cls,
        config: AlphaRecConfig,
        train: sp.csr_matrix,
        data: InteractionData | None,
        cache: InputCache,
    ) -> ItemTexts:
        """The item texts and embeddings (see :func:`alignment.linear.prepare_item_embeddings`)."""
        return prepare_item_embeddings("alpharec", config, data, train, cache)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: AlphaRecConfig,
        train: sp.csr_matrix,
        item_embeddings: ItemTextInput,
    ) -> None:
        super().__init__(n_users, n_items, config, train)
        items = checked_item_embeddings(item_embeddings, n_items)
        items = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
        # derived from the data (and cached on disk), so kept out of checkpoints
        self.register_buffer(
            "user_text", torch.from_numpy(mean_item_rows(train, items)), persistent=False
        )
        self.register_buffer("item_text", torch.from_numpy(items), persistent=False)
        self.adjacency = normalized_adjacency(train)
        self.train_matrix = sp.csr_matrix(train)  # item degrees for fold-in
        self._encoder = NewItemEncoder(config.encoder, item_embeddings)  # for new items' texts
        self.mlp = nn.Sequential(
            nn.Linear(items.shape[1], config.hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(config.hidden_dim, config.embedding_dim),
        )

    def to_device(self, device: torch.device) -> AlphaRec:
        self.adjacency = self.adjacency.to(device)
        return self.to(device)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-norm ``([n_users, d], [n_items, d])``: projected text, propagated, normalised."""
        nodes = self._propagated(self._ego())
        return nodes[: self.n_users], nodes[self.n_users :]

    def _ego(self) -> torch.Tensor:
        """Layer-0 embeddings ``[n_users + n_items, d]``: the MLP of the users' and items' text."""
        ego = self.mlp(torch.cat([self.user_text, self.item_text]))
        if self.adjacency.device != ego.device:
            self.adjacency = self.adjacency.to(ego.device)
        return ego

    def _propagated(self, ego: torch.Tensor) -> torch.Tensor:
        nodes = propagate_sum(self.adjacency, ego, self.config.num_layers) / (
            self.config.num_layers + 1
        )
        return F.normalize(nodes, dim=1)

    def loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> LossOutput:
        user_emb, item_emb = self.embeddings()
        logits, target = candidate_logits(
            user_emb.index_select(0, users) / self.config.temperature,
            item_emb,
            pos_items,
            neg_items,
        )
        loss = F.cross_entropy(logits, target)
        return LossOutput(loss, {"infonce": loss.detach()})

    def score_items(self, users: torch.Tensor, item_text: torch.Tensor) -> torch.Tensor:
        """Zero-shot scores ``[B, n_new]`` of ``users`` against new items given by their
        ``[n_new, d_text]`` text embeddings.

        A new item has no edges, so its embedding is the normalised MLP of its text (see the
        module docstring).
        """
        user_emb, _ = self.embeddings()
        new = F.normalize(self.mlp(F.normalize(item_text.to(self.item_text), dim=1)), dim=1)
        return user_emb[users] @ new.T

    @torch.no_grad()
    def fold_in_embeddings(self, rows: sp.csr_matrix) -> torch.Tensor:
        """Unit ``[B, d]`` embeddings of new users from their ``[B, n_items]`` rows (see the module docstring)."""
        return self._fold_in(rows, self._ego())

    def _fold_in(self, rows: sp.csr_matrix, ego: torch.Tensor) -> torch.Tensor:
        """:meth:`fold_in_embeddings` on the layer-0 embeddings ``ego`` (:meth:`_ego`)."""
        rows = sp.csr_matrix(rows, dtype=np.float32, copy=True)
        rows.data[:] = 1.0
        device = self.item_text.device
        degree = torch.from_numpy(
            np.asarray((self.train_matrix > 0).sum(axis=0), dtype=np.float32).ravel()
        )
        counts = np.diff(rows.indptr)
        weights = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts) / np.sqrt(
            degree.numpy()[rows.indices] + 1.0
        )
        matrix = sparse_csr(
            rows.indptr, rows.indices, weights.astype(np.float32), rows.shape, device
        )
        mean_text = torch.from_numpy(mean_item_rows(rows, self.item_text.cpu().numpy())).to(device)
        layer = ego
        user = self.mlp(mean_text)
        total = user.clone()
        for _ in range(self.config.num_layers):
            total += torch.sparse.mm(matrix, layer[self.n_users :])
            layer = sparse_dense_mm(self.adjacency, layer)
        return F.normalize(total / (self.config.num_layers + 1), dim=1)

    @torch.no_grad()
    def fold_in(self, rows: sp.csr_matrix) -> torch.Tensor:
        """Scores ``[B, n_items]`` of new users given by their interaction rows (cosines, as for training users).

        The items' text goes through the MLP once, for both the trained items' embeddings and
        the new users' propagation.
        """
        ego = self._ego()
        item_emb = self._propagated(ego)[self.n_users :]
        return self._fold_in(rows, ego) @ item_emb.T

    def score_new_items(self, users: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Zero-shot scores ``[B, m]`` of ``users`` against new items given by their texts (:meth:`score_items`)."""
        vectors = torch.from_numpy(
            encode_item_texts(texts, self._encoder.get(), self.config.cache_dir)
        )
        return self.score_items(users.to(self.item_text.device), vectors)
