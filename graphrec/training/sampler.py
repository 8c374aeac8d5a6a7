"""Vectorised BPR triple sampling: uniform negatives that exclude a user's positives.

Augmented batches (:class:`AugmentedBPRSampler`, ``train.augmentation``): LLM-augmented
triplets mixed into every batch, with loss-based denoising.  Each batch of the ordinary
sampler (every training interaction once per epoch) is extended with
``round(B * f / (1 - f))`` augmented (user, liked, disliked) triplets, so a share ``f``
of every batch is augmented.  The augmented pool is walked in a fresh random order each
epoch (cycling when it is shorter than the epoch needs).

Denoising (LLMRec §3.3) is loss-based.  At the start of every epoch the model's BPR
loss ``-log σ(s(u, liked) - s(u, disliked))`` of every augmented triplet is computed
from :meth:`~graphrec.models.base.Recommender.embeddings` (one propagation, no
gradient; the model contract's scores are dot products), and

* ``drop`` removes the ``rate`` share with the largest loss: the triplets the model
  disagrees with most are taken as LLM mistakes (the usual small-loss trick);
* ``keep_hard`` keeps only the ``rate`` share with the largest loss, which is what
  LLMRec's released code does (``prune_loss_drop_rate``, keeping the hardest 29%).

LLMRec ranks the augmented samples inside each batch; refreshing once per epoch keeps
the model contract (``loss`` returns a scalar) and costs one forward pass per epoch.
All randomness comes from the trainer's generator and the selection is a function of
the parameters at the epoch start, so resumed runs and torch.distributed ranks (which
hold identical parameters) draw identical batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from graphrec.config import AugmentationConfig
from graphrec.data.dataset import InteractionData
from graphrec.errors import TrainingError
from graphrec.models.base import Recommender
from graphrec.training.edges import AugmentedEdges, load_edges


class BPRSampler:
    """Yields ``(users, pos_items, neg_items)`` batches, one pass over the positives per epoch.

    Every training interaction is a positive exactly once per epoch, in a random
    order; each gets one negative drawn uniformly from the items the user has not
    interacted with in training.  Rejection sampling is vectorised: all negatives
    of an epoch are drawn at once and only the collisions are redrawn.

    Args:
        train: ``[n_users, n_items]`` CSR matrix of training interactions.
        generator: the torch generator that owns all randomness of sampling (its
            state is saved in checkpoints so a resumed run draws the same batches).
    """

    def __init__(self, train: sp.csr_matrix, generator: torch.Generator) -> None:
        train = sp.csr_matrix(train)
        train.sum_duplicates()
        train.sort_indices()
        self.n_users, self.n_items = train.shape
        counts = np.diff(train.indptr)
        full = np.flatnonzero(counts >= self.n_items)
        if len(full):
            raise TrainingError(
                f"user {int(full[0])} interacted with every item; no negative item can be sampled"
            )
        self.users = torch.from_numpy(np.repeat(np.arange(self.n_users, dtype=np.int64), counts))
        self.items = torch.from_numpy(train.indices.astype(np.int64))
        # CSR with sorted indices => keys already sorted, ready for searchsorted.
        self.positive_keys = self.users * self.n_items + self.items
        self.generator = generator

    @property
    def num_interactions(self) -> int:
        return int(self.users.numel())

    def num_batches(self, batch_size: int) -> int:
        return -(-self.num_interactions // batch_size)

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Boolean ``[n]``: whether each (user, item) pair is a training interaction."""
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.positive_keys, keys).clamp_(max=len(self.positive_keys) - 1)
        return self.positive_keys[pos] == keys

    def sample_negatives(
        self, users: torch.Tensor, max_rounds: int = 1000, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Uniform negatives ``[n]`` for ``users`` (``[n]``), excluding their training items.

        ``order``: the permutation of the training interactions that ``users`` is
        (``users == self.users[order]``, as in :meth:`epoch`), so the first round's check
        runs in training order (:meth:`_first_round_collisions`); the same draws either way.
        """
        negatives = torch.randint(self.n_items, users.shape, generator=self.generator)
        if order is None:
            todo = torch.nonzero(self.is_positive(users, negatives)).squeeze(1)
        else:
            todo = torch.nonzero(self._first_round_collisions(order, negatives)).squeeze(1)
        for _ in range(max_rounds):
            if todo.numel() == 0:
                return negatives
            redraw = torch.randint(self.n_items, todo.shape, generator=self.generator)
            negatives[todo] = redraw
            todo = todo[self.is_positive(users[todo], redraw)]
        raise TrainingError(
            f"negative sampling did not converge after {max_rounds} rounds (users too dense?)"
        )

    def _first_round_collisions(self, order: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """``is_positive(self.users[order], negatives)``, looked up in training order.

        An epoch's first round checks every interaction, each a binary search over all
        positive keys; in shuffled order every search walks a different path out of cache
        (5.9 s of a 1e7-interaction epoch).  Put back in training order (a scatter), the
        queries come user by user, consecutive searches share their path and its cache
        lines, and the answers are gathered back: the same booleans, 1.6 s.
        """
        in_training_order = torch.empty_like(negatives)
        in_training_order[order] = negatives
        return self.is_positive(self.users, in_training_order)[order]

    def prepare_epoch(self, model: Recommender) -> dict[str, float]:
        """Hook called by the trainer before each epoch; figures it returns join the epoch log."""
        return {}

    def epoch(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Batches of one epoch: shuffled positives with fresh negatives.

        The epoch is drawn on the CPU (the same draws on every device) and, with ``device``,
        moved there in one copy: a copy from pageable memory waits for the device to be idle,
        so copying batch by batch would stall a GPU three times per batch.
        """
        order = torch.randperm(self.num_interactions, generator=self.generator)
        users = self.users[order]
        items = self.items[order]
        negatives = self.sample_negatives(users, order=order)
        if device is not None:
            users, items, negatives = (t.to(device) for t in (users, items, negatives))
        for start in range(0, len(order), batch_size):
            stop = start + batch_size
            yield users[start:stop], items[start:stop], negatives[start:stop]


def augmented_losses(model: Recommender, edges: AugmentedEdges) -> torch.Tensor:
    """``[n]`` BPR losses of the augmented triplets under the model's current embeddings (no gradient)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            user_emb, item_emb = model.embeddings()
            device = user_emb.device
            u = user_emb[edges.users.to(device)]
            diff = (u * item_emb[edges.pos_items.to(device)]).sum(-1) - (
                u * item_emb[edges.neg_items.to(device)]
            ).sum(-1)
            return F.softplus(-diff).float().cpu()
    finally:
        model.train(was_training)


def select_by_loss(losses: torch.Tensor, denoise: str, rate: float) -> torch.Tensor:
    """Indices of the augmented triplets used this epoch (sorted ascending).

    ``drop``: all but the ``round(rate * n)`` largest losses; ``keep_hard``: only the
    ``max(1, round(rate * n))`` largest; ``none``: all.  Ties are broken by index.
    """
    n = int(losses.numel())
    if denoise == "none" or n == 0:
        return torch.arange(n)
    order = torch.sort(losses, descending=True, stable=True).indices
    k = int(round(rate * n))
    if denoise == "drop":
        chosen = order[k:]
    elif denoise == "keep_hard":
        chosen = order[: max(1, k)]
    else:
        raise ValueError(f"unknown denoise mode {denoise!r}")
    return torch.sort(chosen).values


class AugmentedBPRSampler:
    """A :class:`BPRSampler` whose batches carry augmented triplets too.

    Args:
        base: the ordinary sampler over the training interactions (shares ``generator``).
        edges: the augmented triplets (internal ids).
        fraction: share ``f`` of each batch made of augmented triplets, ``0 <= f < 1``.
        denoise: ``none``, ``drop`` or ``keep_hard`` (see the module docstring).
        rate: share dropped or kept by denoising.
    """

    def __init__(
        self,
        base: BPRSampler,
        edges: AugmentedEdges,
        fraction: float,
        denoise: str = "none",
        rate: float = 0.2,
    ) -> None:
        self.base = base
        self.edges = edges
        self.fraction = fraction
        self.denoise = denoise
        self.rate = rate
        self.generator = base.generator
        self.active = torch.arange(len(edges))

    @property
    def num_interactions(self) -> int:
        return self.base.num_interactions

    @property
    def augmentation_sha256(self) -> str:
        return self.edges.sha256

    def num_batches(self, batch_size: int) -> int:
        return self.base.num_batches(batch_size)

    def augmented_per_batch(self, originals: int) -> int:
        return int(round(originals * self.fraction / (1.0 - self.fraction)))

    def prepare_epoch(self, model: Recommender) -> dict[str, float]:
        """Choose this epoch's augmented triplets (denoising); returns figures for the epoch log."""
        if self.denoise == "none" or len(self.edges) == 0:
            self.active = torch.arange(len(self.edges))
            return {"aug_active": float(len(self.active))}
        losses = augmented_losses(model, self.edges)
        self.active = select_by_loss(losses, self.denoise, self.rate)
        kept = losses[self.active]
        return {
            "aug_active": float(len(self.active)),
            "aug_loss_all": float(losses.mean()),
            "aug_loss_kept": float(kept.mean()) if len(kept) else 0.0,
        }

    def epoch(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The base sampler's batches, each followed by its share of augmented triplets."""
        pool = None
        if self.fraction > 0 and len(
            self.active
        ):  # fraction 0 draws nothing: identical to plain BPR
            pool = self.active[torch.randperm(len(self.active), generator=self.generator)]
        cursor = 0
        for users, pos, neg in self.base.epoch(batch_size, device):
            k = self.augmented_per_batch(len(users))
            if pool is None or k == 0:
                yield users, pos, neg
                continue
            take = pool[torch.arange(cursor, cursor + k) % len(pool)]
            cursor += k
            yield (
                torch.cat([users, self.edges.users[take].to(users.device)]),
                torch.cat([pos, self.edges.pos_items[take].to(users.device)]),
                torch.cat([neg, self.edges.neg_items[take].to(users.device)]),
            )


def build_sampler(
    data: InteractionData,
    generator: torch.Generator,
    augmentation: AugmentationConfig | None = None,
) -> BPRSampler | AugmentedBPRSampler:
    """The trainer's sampler: :class:`BPRSampler`, or with ``augmentation.path`` set, an
    :class:`AugmentedBPRSampler` replaying that edge file."""
    sampler = BPRSampler(data.train, generator)
    if augmentation is None or not augmentation.path:
        return sampler
    edges = load_edges(augmentation.path, data)
    return AugmentedBPRSampler(
        sampler, edges, augmentation.fraction, augmentation.denoise, augmentation.rate
    )
