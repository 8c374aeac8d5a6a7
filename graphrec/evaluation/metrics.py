"""Top-K metrics: per-user accuracy metrics and list-level beyond-accuracy metrics.

Definitions (``rel_i`` = 1 when the item at rank ``i`` (1-based) is a target item,
``T`` = the user's set of target items, ``hits@K = sum_{i<=K} rel_i``):

* ``recall@K``    = hits@K / |T|
* ``precision@K`` = hits@K / K   (K even when fewer than K items could be ranked)
* ``hitrate@K``   = 1 if hits@K > 0 else 0
* ``ndcg@K``      = DCG / IDCG with DCG = sum_{i<=K} rel_i / log2(i + 1) and
  IDCG = sum_{i<=min(K, |T|)} 1 / log2(i + 1)
* ``mrr@K``       = 1 / (rank of the first hit) if a hit within K else 0
* ``map@K``       = sum_{i<=K} P@i * rel_i / min(K, |T|)

Each is computed per evaluated user and averaged over users.

Beyond accuracy (computed from how often each item appears in the top-K lists
of the evaluated users; ``c_j`` = number of lists containing item j, over all
``n`` items):

* ``coverage@K``       = |{j : c_j > 0}| / n
* ``gini@K``           = sum_{i=1..n} (2i - n - 1) c_(i) / (n * sum_j c_j), with
  ``c_(1) <= ... <= c_(n)`` the sorted counts (0 = perfectly even, (n-1)/n = one item only)
* ``avg_popularity@K`` = sum_j c_j * pop_j / sum_j c_j, the mean training-interaction
  count over all recommended (user, item) slots (equal to the mean over users of the
  per-list mean when every list has K items).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "ACCURACY_METRICS",
    "BEYOND_ACCURACY_METRICS",
    "accuracy_metrics",
    "coverage",
    "gini_index",
    "average_popularity",
]

ACCURACY_METRICS = ("recall", "ndcg", "precision", "hitrate", "mrr", "map")
BEYOND_ACCURACY_METRICS = ("coverage", "gini", "avg_popularity")


def accuracy_metrics(
    hits: np.ndarray, n_target: np.ndarray, ks: tuple[int, ...], names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Per-user accuracy metrics from a hit matrix (NumPy; the arrays are only ``[B, K]``).

    Args:
        hits: ``[B, L]`` bool/0-1 array, ``hits[u, i]`` = item at rank ``i + 1`` is a target.
            ``L`` may be smaller than ``max(ks)`` (fewer items than K); missing ranks count
            as misses.
        n_target: ``[B]`` number of target items per user (all > 0).
        ks: cut-offs.
        names: metric names from :data:`ACCURACY_METRICS`.

    Returns:
        ``{"name@K": float64 array [B]}`` in the order name-major, K-minor.
    """
    hits = np.asarray(hits, dtype=np.float64)
    n_target = np.asarray(n_target, dtype=np.float64)
    length = hits.shape[1]
    max_k = max(ks)
    ranks = np.arange(1, max(length, max_k) + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    ideal = np.cumsum(discount)  # ideal[j - 1] = IDCG of j relevant items
    cum_hits = np.cumsum(hits, axis=1)
    any_hit = cum_hits[:, -1] > 0 if length else np.zeros(len(n_target), dtype=bool)
    first = np.argmax(hits, axis=1) if length else np.zeros(len(n_target), dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for name in names:
        for k in ks:
            upto = min(k, length)
            hits_k = cum_hits[:, upto - 1] if upto > 0 else np.zeros_like(n_target)
            if name == "recall":
                value = hits_k / n_target
            elif name == "precision":
                value = hits_k / k
            elif name == "hitrate":
                value = (hits_k > 0).astype(np.float64)
            elif name == "ndcg":
                dcg = hits[:, :upto] @ discount[:upto]
                value = dcg / ideal[np.minimum(n_target, k).astype(np.int64) - 1]
            elif name == "mrr":
                # argmax gives the first maximum, i.e. the first hit when there is one
                value = np.where(any_hit & (first < upto), 1.0 / (first + 1.0), 0.0)
            elif name == "map":
                precision_at = cum_hits[:, :upto] / ranks[:upto]
                value = (precision_at * hits[:, :upto]).sum(axis=1) / np.minimum(n_target, k)
            else:  # pragma: no cover - names are validated by the Evaluator
                raise ValueError(f"unknown accuracy metric {name!r}")
            out[f"{name}@{k}"] = value
    return out


def coverage(counts: np.ndarray) -> float:
    """Share of items recommended at least once (``counts[j]`` = lists containing j)."""
    counts = np.asarray(counts)
    return float((counts > 0).sum() / counts.size) if counts.size else 0.0


def gini_index(counts: np.ndarray) -> float:
    """Gini index of recommendation counts over all items (sorted-counts formula).

    ``G = sum_i (2i - n - 1) c_(i) / (n * sum c)`` with ascending counts ``c_(i)``;
    0.0 when nothing was recommended.
    """
    c = np.sort(np.asarray(counts, dtype=np.float64))
    n = c.size
    total = c.sum()
    if n == 0 or total == 0:
        return 0.0
    weights = 2.0 * np.arange(1, n + 1, dtype=np.float64) - n - 1.0
    return float((weights * c).sum() / (n * total))


def average_popularity(counts: np.ndarray, popularity: np.ndarray) -> float:
    """Mean popularity over all recommended (user, item) slots; NaN if nothing recommended."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return math.nan
    return float((counts * np.asarray(popularity, dtype=np.float64)).sum() / total)
