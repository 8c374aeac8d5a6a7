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

Constructors are pure: tensors and prepared objects in, no file or network I/O.  A
model whose inputs need I/O or heavy work (reading and pruning a knowledge graph,
encoding item texts) declares :meth:`Recommender.prepare`, which does that work once
and returns the prepared object its constructor takes; :func:`graphrec.models.build_model`
calls ``prepare`` then the constructor.  An :class:`InputCache` shared by several
builds (the variants of one experiment) prepares each distinct input once.

Closed-form models (EASE, ItemKNN, most-popular) are not trained by SGD: they
derive from :class:`ClosedFormRecommender` (``trainable = False``), compute their
parameters once in :meth:`ClosedFormRecommender.fit` and override
:meth:`Recommender.score`.  The trainer calls ``fit()`` as the run's single
"epoch" instead of BPR steps; they have no :meth:`~Recommender.loss` and no
low-dimensional :meth:`~Recommender.embeddings`.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from graphrec.data.dataset import InteractionData
from graphrec.errors import TrainingError

Scorer = Callable[[torch.Tensor], torch.Tensor]
_Model = TypeVar("_Model", bound="Recommender")
_Inputs = TypeVar("_Inputs")


def sparse_csr(crow, col, values, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """A torch sparse CSR tensor from valid CSR arrays (numpy or torch; no invariant check)."""
    crow, col, values = (torch.as_tensor(a) for a in (crow, col, values))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            crow.to(device, torch.int64),
            col.to(device, torch.int64),
            values.to(device),
            size=shape,
            check_invariants=False,
        )


@dataclass
class LossOutput:
    """A training loss and its named parts (averaged over the epoch's batches and logged).

    A part is a float or a detached 0-d tensor; the trainer reads tensors once per epoch, so
    on a GPU no batch waits for its loss to be copied back.
    """

    loss: torch.Tensor
    parts: dict[str, float | torch.Tensor] = field(default_factory=dict)


class Recommender(nn.Module, abc.ABC):
    """Base class of all recommenders; see the module docstring for the contract."""

    #: registry name, e.g. ``"lightgcn"``
    name: ClassVar[str]
    #: the model's config dataclass
    config_class: ClassVar[type]
    #: ``True``: trained by SGD on :meth:`loss`; ``False``: a :class:`ClosedFormRecommender`
    trainable: ClassVar[bool] = True
    #: optional packages (import names) the model needs beyond the core install; commands
    #: check them (:func:`graphrec.optional.require`) before any work
    requires: ClassVar[tuple[str, ...]] = ()
    # ``config`` is typed Any throughout: each model has its own config dataclass (no common
    # base), and subclasses narrow it to theirs.

    @classmethod
    def inputs_key(cls, config: Any) -> Hashable | None:
        """What the prepared inputs depend on besides the data (the config fields that shape them).

        Models whose keys are equal share one prepared object through an :class:`InputCache`
        (e.g. every knowledge-aware model with the same KG settings shares one graph); the
        key's first element names the kind of input.  ``None``: nothing to share.
        """
        return None

    @classmethod
    def prepare(
        cls,
        config: Any,
        train: sp.csr_matrix,
        data: InteractionData | None,
        cache: InputCache,
    ) -> object | None:
        """Do the I/O and heavy work the constructor needs, once; returns what it takes.

        ``train`` is the ``[n_users, n_items]`` training matrix the model will be built on,
        ``data`` the dataset (``None`` where none is at hand, e.g. the model contract suite),
        ``cache`` where wrappers prepare their backbone's inputs.  The default (``None``)
        means the constructor needs only ``(n_users, n_items, config, train)``.
        """
        return None

    @classmethod
    def from_inputs(
        cls: type[_Model],
        n_users: int,
        n_items: int,
        config: Any,
        train: sp.csr_matrix,
        inputs: object | None,
    ) -> _Model:
        """The model built on ``inputs`` (what :meth:`prepare` returned): ``cls(..., inputs)``."""
        if inputs is None:
            return cls(n_users, n_items, config, train)
        return cls(n_users, n_items, config, train, inputs)  # type: ignore[call-arg]

    def __init__(self, n_users: int, n_items: int, config: Any, train: sp.csr_matrix) -> None:
        super().__init__()
        if train.shape != (n_users, n_items):
            raise ValueError(
                f"train matrix has shape {train.shape}, expected ({n_users}, {n_items})"
            )
        self.n_users = n_users
        self.n_items = n_items
        self.config = config

    @abc.abstractmethod
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user and item representations, ``([n_users, d], [n_items, d])``."""

    @abc.abstractmethod
    def loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> LossOutput:
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

    def to_device(self, device: torch.device) -> Recommender:
        """Move parameters and any sparse buffers to ``device``."""
        return self.to(device)


class ClosedFormRecommender(Recommender):
    """A recommender computed in one closed-form step from the training matrix (no SGD).

    The constructor only stores the binarised training matrix (needed again when
    scoring, and kept out of the state dict like LightGCN's adjacency) and allocates
    the fitted parameters as zero buffers of fixed shape, so building a model is
    cheap and a checkpoint's state dict (loaded with ``weights_only=True``) restores
    a fitted model.  Subclasses implement :meth:`_fit` and :meth:`score`.

    The contract differs from trainable models in three places:

    * :meth:`fit` replaces training; the trainer calls it once, as epoch 1;
    * :meth:`loss` raises: there is nothing to optimise;
    * :meth:`embeddings` raises :class:`NotImplementedError`: scores are
      ``X_u · W`` with an item-item (or item-only) ``W``, and the only exact "user
      representation" is the user's sparse row of the training matrix, which the
      contract's dense ``[n_users, d]`` tensor would densify.  Consumers of
      embeddings (augmentation denoising, text alignment) need a trainable backbone.
    """

    trainable: ClassVar[bool] = False
    fitted: torch.Tensor

    def __init__(self, n_users: int, n_items: int, config: Any, train: sp.csr_matrix) -> None:
        super().__init__(n_users, n_items, config, train)
        interactions = sp.csr_matrix(train, dtype=np.float32, copy=True)
        interactions.sum_duplicates()
        interactions.eliminate_zeros()
        interactions.data[:] = 1.0  # implicit feedback: any stored interaction counts once
        self.interactions = interactions
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self) -> dict[str, float]:
        """Compute the model from the training matrix; returns figures to log (may be empty).

        Deterministic: the same training matrix always gives the same model.
        """
        with torch.no_grad():
            figures = self._fit() or {}
        self.fitted.fill_(True)
        return figures

    @abc.abstractmethod
    def _fit(self) -> dict[str, float] | None:
        """Fill the model's buffers from ``self.interactions``."""

    def _check_fitted(self) -> None:
        if not bool(self.fitted):
            raise TrainingError(
                f"model {self.name!r} is not fitted: call fit() (the trainer does) or load a checkpoint"
            )

    def user_rows(self, users: torch.Tensor, device: torch.device) -> torch.Tensor:
        """The training rows of ``users`` as a sparse CSR ``[B, n_items]`` tensor on ``device``."""
        rows = self.interactions[users.detach().cpu().numpy()]
        return sparse_csr(rows.indptr, rows.indices, rows.data, rows.shape, device)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(
            f"{type(self).__name__} ({self.name!r}) is a closed-form model without low-dimensional "
            "user/item embeddings; use score() or scorer()"
        )

    def loss(
        self, users: torch.Tensor, pos_items: torch.Tensor, neg_items: torch.Tensor
    ) -> LossOutput:
        raise TrainingError(
            f"model {self.name!r} is closed-form: it has no training loss; it is fitted by fit()"
        )

    @abc.abstractmethod
    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, n_items]`` of ``users``, computed from their sparse training rows."""

    @torch.no_grad()
    def scorer(self) -> Scorer:
        self._check_fitted()

        def score(users: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self.score(users)

        return score


class InputCache:
    """Prepared model inputs shared by the models built through one cache.

    An experiment that builds several variants on the same data passes one cache to
    :func:`graphrec.models.build_model`, so the knowledge graph is read and pruned, or the
    item texts encoded, once per distinct setting.  An entry is keyed by the model class's
    :meth:`~Recommender.inputs_key` and the identity of the training matrix and dataset it
    was prepared from; the cache holds those objects, so their ids cannot be reused while
    it lives.  Classes without a key (or with an unhashable one) are prepared every time.

    Preparation runs with the global CPU random state saved and restored, so whether the
    inputs were prepared, cached or passed in never moves the model's initial weights.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[sp.csr_matrix, InteractionData | None, object]] = {}
        #: how many inputs were prepared (not found in the cache)
        self.prepared = 0

    def inputs(
        self,
        cls: type[Recommender],
        config: Any,
        train: sp.csr_matrix,
        data: InteractionData | None,
    ) -> object | None:
        """``cls.prepare(config, train, data, self)``, or the entry prepared before with the same key."""
        key = cls.inputs_key(config)
        return self.shared(key, train, data, lambda: cls.prepare(config, train, data, self))

    def shared(
        self,
        key: Hashable | None,
        train: sp.csr_matrix,
        data: InteractionData | None,
        make: Callable[[], _Inputs],
    ) -> _Inputs:
        """``make()`` once per ``key`` and (``train``, ``data``); ``key=None`` (or unhashable): every time.

        For inputs that several model classes share (the item text embeddings of the text
        models) or that a wrapper prepares besides its backbone's.
        """
        if key is not None:
            try:
                hash(key)
            except TypeError:
                key = None
        if key is None:
            return self._make(make)
        full = (key, id(train), id(data))
        entry = self._entries.get(full)
        if entry is None:
            entry = (train, data, self._make(make))
            self._entries[full] = entry
        return entry[2]  # type: ignore[return-value]

    def _make(self, make: Callable[[], _Inputs]) -> _Inputs:
        with torch.random.fork_rng(devices=[]):
            inputs = make()
        if inputs is not None:
            self.prepared += 1
        return inputs

    def __len__(self) -> int:
        return len(self._entries)
