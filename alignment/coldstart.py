"""Cold-start items: a split that holds out items entirely, text-only baselines, restricted ranking.

:func:`cold_start_split` removes a random share of items from training and
validation; every interaction with them (from all three splits) becomes the test
set.  Models are selected on the warm validation split and evaluated on the cold
items' test interactions, ranking the cold items only
(:func:`evaluate_cold_start`), the usual protocol of cold-start item
recommendation.  The baselines score with text only:
:func:`text_profile_scorer` (cosine of the user profile and the item text) and
:func:`text_item_knn_scorer` (item-kNN over text similarity).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data.dataset import InteractionData
from graphrec.evaluation import EvaluationResult, evaluate_scorer

Scorer = Callable[[torch.Tensor], torch.Tensor]


def _drop_columns(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix(matrix @ sp.diags(keep.astype(np.float32)), dtype=np.float32)


def cold_start_split(
    data: InteractionData, fraction: float = 0.1, seed: int = 0
) -> InteractionData:
    """A copy of ``data`` in which ``fraction`` of the items (random, ``seed``) have no training
    or validation interactions; the test split holds all interactions with those items.

    The cold items' internal ids are in ``meta["cold_start"]["items"]``.  Item side
    information, ids and the KG are kept, so cold items still have text.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    n_cold = max(1, int(round(fraction * data.n_items)))
    cold = np.sort(rng.choice(data.n_items, size=n_cold, replace=False))
    is_cold = np.zeros(data.n_items, dtype=bool)
    is_cold[cold] = True
    everything = data.train.copy()
    for split in (data.valid, data.test):
        if split is not None:
            everything = everything + split
    everything.data[:] = 1.0
    test = _drop_columns(everything, is_cold)
    test.eliminate_zeros()
    train = _drop_columns(data.train, ~is_cold)
    train.eliminate_zeros()
    valid = None if data.valid is None else _drop_columns(data.valid, ~is_cold)
    if valid is not None:
        valid.eliminate_zeros()
    meta = dict(data.meta)
    meta["cold_start"] = {
        "fraction": fraction,
        "seed": seed,
        "items": cold.tolist(),
        "n_items": int(n_cold),
        "test_interactions": int(test.nnz),
    }
    return InteractionData(
        name=f"{data.name}-cold{fraction:g}-seed{seed}",
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        train=train,
        valid=valid,
        test=test,
        item_info=data.item_info,
        user_info=data.user_info,
        kg=data.kg,
        meta=meta,
    )


def validation_cold_split(
    cold: InteractionData, fraction: float = 0.1, seed: int = 123
) -> InteractionData:
    """A cold-start split *inside* the training data of ``cold`` (a :func:`cold_start_split`), for
    choosing cold-item settings without touching its held-out items.

    ``fraction`` of ``cold``'s other items (random, ``seed``) lose their training interactions; their
    training and validation interactions become the test targets.  The result has no validation
    split, and its held-out items are in ``meta["cold_start"]["items"]`` (:func:`cold_items_of`).
    """
    warm = np.setdiff1d(np.arange(cold.n_items), cold_items_of(cold))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(warm, size=int(round(fraction * len(warm))), replace=False))
    is_held = np.zeros(cold.n_items, dtype=bool)
    is_held[pick] = True
    seen = (cold.train + cold.valid).tocsr() if cold.valid is not None else cold.train.copy()
    seen.data[:] = 1.0
    targets = _drop_columns(seen, is_held)
    targets.eliminate_zeros()
    train = _drop_columns(cold.train, ~is_held)
    train.eliminate_zeros()
    return InteractionData(
        name=f"{cold.name}-validation",
        user_ids=cold.user_ids,
        item_ids=cold.item_ids,
        train=train,
        valid=None,
        test=targets,
        item_info=cold.item_info,
        meta={"cold_start": {"items": pick.tolist()}},
    )


def cold_items_of(data: InteractionData) -> np.ndarray:
    """Internal ids of the held-out items of a :func:`cold_start_split` dataset."""
    info = data.meta.get("cold_start")
    if not info:
        raise ValueError(f"dataset {data.name!r} is not a cold-start split (no meta['cold_start'])")
    return np.asarray(info["items"], dtype=np.int64)


def restrict_to_items(scorer: Scorer, items: Iterable[int], n_items: int) -> Scorer:
    """A scorer that ranks only ``items``: every other item scores ``-inf`` (never recommended)."""
    allowed = torch.zeros(n_items, dtype=torch.bool)
    allowed[
        torch.as_tensor(
            np.asarray(list(items) if not isinstance(items, np.ndarray) else items),
            dtype=torch.long,
        )
    ] = True

    def score(users: torch.Tensor) -> torch.Tensor:
        scores = scorer(users)
        return scores.masked_fill(~allowed.to(scores.device), float("-inf"))

    return score


def text_profile_scorer(user_vectors: np.ndarray, item_vectors: np.ndarray) -> Scorer:
    """Cosine of each user's profile embedding with every item's text embedding, ``[B, n_items]``."""
    users = torch.nn.functional.normalize(
        torch.as_tensor(user_vectors, dtype=torch.float32), dim=-1
    )
    items = torch.nn.functional.normalize(
        torch.as_tensor(item_vectors, dtype=torch.float32), dim=-1
    )

    def score(batch: torch.Tensor) -> torch.Tensor:
        return users[batch.cpu()] @ items.T

    return score


def text_item_knn_scorer(
    train: sp.csr_matrix, item_vectors: np.ndarray, k: int = 50, block: int = 1024
) -> Scorer:
    r"""Item-kNN on text: :math:`s_{ui} = \sum_{j \in N_k(i) \cap I_u} \cos(t_i, t_j)`.

    ``N_k(i)`` are the ``k`` training-warm items most similar to ``i`` by text (items
    without training interactions are never neighbours).  The neighbour matrix is
    sparse (``k`` entries per item), built block by block.
    """
    train = sp.csr_matrix(train, dtype=np.float32)
    items = torch.nn.functional.normalize(
        torch.as_tensor(item_vectors, dtype=torch.float32), dim=-1
    )
    n_items = items.shape[0]
    warm = torch.from_numpy(np.asarray((train != 0).sum(axis=0)).ravel() > 0)
    k = min(k, int(warm.sum()))
    rows, cols, vals = [], [], []
    for start in range(0, n_items, block):
        sims = items[start : start + block] @ items.T
        sims[:, ~warm] = float("-inf")
        index = torch.arange(start, min(start + block, n_items))
        sims[torch.arange(len(index)), index] = float("-inf")  # an item is not its own neighbour
        top = sims.topk(k, dim=1)
        rows.append(index.repeat_interleave(k).numpy())
        cols.append(top.indices.reshape(-1).numpy())
        vals.append(top.values.reshape(-1).clamp_min(0).numpy())
    neighbours = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
    )
    binary = train.copy()
    binary.data[:] = 1.0
    neighbours_t = neighbours.T.tocsr()

    def score(batch: torch.Tensor) -> torch.Tensor:
        # only the batch's [B, n_items] block is ever materialised
        block_scores = (binary[batch.cpu().numpy()] @ neighbours_t).toarray()
        return torch.from_numpy(block_scores.astype(np.float32))

    return score


def evaluate_cold_start(
    scorer: Scorer, data: InteractionData, ks: Iterable[int] = (10, 20), **kw
) -> EvaluationResult:
    """Evaluate on a :func:`cold_start_split` dataset's test split, ranking the cold items only."""
    cold = cold_items_of(data)
    result = evaluate_scorer(
        restrict_to_items(scorer, cold, data.n_items), data, split="test", ks=ks, **kw
    )
    result.meta["candidates"] = f"{len(cold)} cold items"
    return result
