"""Per-run analyses for the report: metric@K curves, long tail, sparse users.

One full-ranking pass over a run's best checkpoint (same protocol as the
evaluation harness: training items masked, validation items too when the run
masked them at test time, ties to the lower item index) yields:

* **metric@K curves**: Recall, NDCG and HitRate at many cut-offs (1 ... 100);
* **long tail**: items are sorted by training popularity and cut into
  ``pop_buckets`` groups holding equal shares of the training interactions
  (bucket 1 = the few most popular items, the last = the long tail).  Per bucket:
  recall@K restricted to the bucket's test items (averaged over users with test
  items in the bucket) and the bucket's share of all top-K recommendations
  (exposure);
* **sparse (cold-start) users**: users cut into ``user_buckets`` quantile groups
  by their number of training interactions; recall@K and NDCG@K per group.

The result is cached as ``RUN/analysis/<split>.json`` with the settings and the
checkpoint's size and mtime as its key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.config import RunConfig
from graphrec.data.dataset import InteractionData
from graphrec.evaluation.metrics import accuracy_metrics
from graphrec.evaluation.ranking import gather_csr_rows, mask_scores, topk_with_ties
from graphrec.io import atomic_write_json
from graphrec.models import Recommender
from graphrec.training import load_run

__all__ = ["AnalysisSettings", "analyze_run", "popularity_buckets", "user_activity_buckets"]

log = logging.getLogger(__name__)

CURVE_KS = (1, 2, 3, 5, 10, 15, 20, 30, 40, 50, 75, 100)
VERSION = 1


@dataclass(frozen=True)
class AnalysisSettings:
    """What the analysis pass computes."""

    split: str = "test"
    k: int = 20
    curve_ks: tuple[int, ...] = CURVE_KS
    pop_buckets: int = 5
    user_buckets: int = 4
    batch_size: int = 1024


def popularity_buckets(popularity: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket id per item: items sorted by popularity (desc), cut into equal shares of interactions.

    Ties in popularity are ordered by item index, so the assignment is deterministic.
    Items never interacted with fall in the last bucket.
    """
    popularity = np.asarray(popularity, dtype=np.float64)
    order = np.lexsort((np.arange(len(popularity)), -popularity))
    total = popularity.sum()
    buckets = np.empty(len(popularity), dtype=np.int64)
    if total <= 0:
        buckets[order] = np.minimum(
            n_buckets - 1, (np.arange(len(order)) * n_buckets) // max(1, len(order))
        )
        return buckets
    before = (
        np.cumsum(popularity[order]) - popularity[order]
    ) / total  # share of interactions above this item
    buckets[order] = np.minimum(
        n_buckets - 1, np.floor(before * n_buckets + 1e-12).astype(np.int64)
    )
    buckets[popularity == 0] = n_buckets - 1
    return buckets


def user_activity_buckets(
    degree: np.ndarray, n_buckets: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Quantile groups of users by training degree: ``(bucket per user, [(lo, hi) degree range])``."""
    degree = np.asarray(degree, dtype=np.int64)
    edges = np.unique(
        np.quantile(degree, np.linspace(0, 1, n_buckets + 1)[1:-1], method="lower").astype(np.int64)
    )
    buckets = np.searchsorted(edges, degree, side="left")
    ranges = []
    lo = int(degree.min()) if len(degree) else 0
    for b in range(len(edges) + 1):
        members = degree[buckets == b]
        ranges.append(
            (int(members.min()) if len(members) else lo, int(members.max()) if len(members) else lo)
        )
    return buckets, ranges


def _cache_key(run_dir: Path, settings: AnalysisSettings) -> dict[str, Any]:
    best = run_dir / "checkpoints" / "best.pt"
    stat = best.stat()
    return {
        "version": VERSION,
        "settings": asdict(settings),
        "checkpoint": [stat.st_size, int(stat.st_mtime_ns)],
    }


def analyze_run(
    run_dir: str | Path,
    data: InteractionData | None = None,
    settings: AnalysisSettings | None = None,
    cache: bool = True,
) -> dict[str, Any] | None:
    """Analyses of one finished run (see the module docstring); ``None`` without a best checkpoint.

    ``data``: the run's split when the caller has it loaded (else it is loaded from the run's config)."""
    settings = settings or AnalysisSettings()
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoints" / "best.pt").exists():
        log.info("%s: no best checkpoint (deleted?): no analysis", run_dir)
        return None
    key = _cache_key(run_dir, settings)
    cache_path = run_dir / "analysis" / f"{settings.split}.json"
    if cache and cache_path.exists():
        try:
            cached = json.loads(cache_path.read_text(encoding="utf-8"))
            if cached.get("key") == json.loads(json.dumps(key)):
                return cached
        except json.JSONDecodeError:
            pass
    config, data, model = load_run(run_dir, data)
    result = _analyze(config, data, model, settings)
    result["key"] = key
    if cache:
        atomic_write_json(cache_path, result)
    return result


@dataclass
class _RankingPass:
    """One full-ranking pass over the users with ``settings.split`` items, accumulated batch by batch."""

    target: sp.csr_matrix
    masks: list[sp.csr_matrix]
    bucket_of: np.ndarray
    curve_ks: tuple[int, ...]
    k: int
    n_buckets: int
    curve: dict[str, list[np.ndarray]] = field(default_factory=dict)
    bucket_hits: np.ndarray = field(init=False)  # sum over users of per-bucket recall
    bucket_users: np.ndarray = field(init=False)  # users with test items in the bucket
    exposure: np.ndarray = field(init=False)  # top-K slots per bucket
    n_target: np.ndarray = field(init=False)  # target items per user

    def __post_init__(self) -> None:
        self.bucket_hits = np.zeros(self.n_buckets)
        self.bucket_users = np.zeros(self.n_buckets)
        self.exposure = np.zeros(self.n_buckets)
        self.n_target = np.diff(self.target.indptr).astype(np.int64)

    def add_batch(self, batch: np.ndarray, scores: torch.Tensor) -> None:
        """Mask, rank and score one batch of users (``scores``: their ``[B, n_items]`` scores)."""
        n_items = self.target.shape[1]
        for matrix in self.masks:
            local, cols = gather_csr_rows(matrix, batch)
            mask_scores(scores, local, cols)
        values, top = topk_with_ties(scores, max(max(self.curve_ks), self.k))
        indices, valid = top.numpy(), (values != float("-inf")).numpy()
        local, cols = gather_csr_rows(self.target, batch)
        target_keys = local * n_items + cols
        keys = np.arange(len(batch), dtype=np.int64)[:, None] * n_items + indices
        found = np.minimum(np.searchsorted(target_keys, keys), max(0, len(target_keys) - 1))
        hits = (target_keys[found] == keys) & valid
        n_target = self.n_target[batch]
        for name, vals in accuracy_metrics(
            hits, n_target, self.curve_ks, ("recall", "ndcg", "hitrate")
        ).items():
            self.curve.setdefault(name, []).append(vals)
        for name, vals in accuracy_metrics(hits, n_target, (self.k,), ("recall", "ndcg")).items():
            self.curve.setdefault("_" + name, []).append(vals)
        self._add_buckets(indices, valid, hits, local, cols, len(batch))

    def _add_buckets(
        self,
        indices: np.ndarray,
        valid: np.ndarray,
        hits: np.ndarray,
        local: np.ndarray,
        cols: np.ndarray,
        batch_size: int,
    ) -> None:
        k, n_b = self.k, self.n_buckets
        top_bucket = self.bucket_of[indices[:, :k]]
        self.exposure += np.bincount(top_bucket[valid[:, :k]], minlength=n_b)
        per_user_targets = np.zeros((batch_size, n_b))
        np.add.at(per_user_targets, (local, self.bucket_of[cols]), 1.0)
        per_user_hits = np.zeros((batch_size, n_b))
        rows, ranks = np.nonzero(hits[:, :k])
        np.add.at(per_user_hits, (rows, top_bucket[rows, ranks]), 1.0)
        has = per_user_targets > 0
        self.bucket_hits += np.where(has, per_user_hits / np.maximum(per_user_targets, 1), 0.0).sum(
            axis=0
        )
        self.bucket_users += has.sum(axis=0)


def _popularity_rows(
    ranking: _RankingPass, popularity: np.ndarray, target: sp.csr_matrix
) -> list[dict[str, Any]]:
    out = []
    total_train = float(popularity.sum()) or 1.0
    test_per_item = np.asarray(target.sum(axis=0)).ravel()
    users, hits, exposure = ranking.bucket_users, ranking.bucket_hits, ranking.exposure
    for b in range(ranking.n_buckets):
        members = ranking.bucket_of == b
        pops = popularity[members]
        out.append(
            {
                "bucket": b + 1,
                "items": int(members.sum()),
                "popularity_min": int(pops.min()) if len(pops) else 0,
                "popularity_max": int(pops.max()) if len(pops) else 0,
                "train_share": float(pops.sum() / total_train),
                "test_interactions": int(test_per_item[members].sum()),
                "users": int(users[b]),
                "recall": float(hits[b] / users[b]) if users[b] else None,
                "exposure": float(exposure[b] / max(1.0, exposure.sum())),
            }
        )
    return out


def _user_rows(
    per_user: dict[str, np.ndarray], degree: np.ndarray, k: int, n_buckets: int
) -> list[dict[str, Any]]:
    ubucket, ranges = user_activity_buckets(degree, n_buckets)
    out = []
    for b, (lo, hi) in enumerate(ranges):
        members = ubucket == b
        if not members.any():
            continue
        out.append(
            {
                "bucket": b + 1,
                "degree_min": lo,
                "degree_max": hi,
                "users": int(members.sum()),
                "recall": float(per_user[f"_recall@{k}"][members].mean()),
                "ndcg": float(per_user[f"_ndcg@{k}"][members].mean()),
            }
        )
    return out


def _analyze(
    config: RunConfig, data: InteractionData, model: Recommender, settings: AnalysisSettings
) -> dict[str, Any]:
    target = sp.csr_matrix(data.split(settings.split))
    target.data = (target.data > 0).astype(np.float32)
    target.eliminate_zeros()
    masks = [data.train]
    if settings.split == "test" and config.eval.mask_valid_at_test and data.valid is not None:
        masks.append(data.valid)
    n_items = target.shape[1]
    users = np.flatnonzero(np.diff(target.indptr) > 0).astype(np.int64)
    popularity = data.item_popularity()
    ranking = _RankingPass(
        target=target,
        masks=[sp.csr_matrix(m) for m in masks],
        bucket_of=popularity_buckets(popularity, settings.pop_buckets),
        curve_ks=tuple(k for k in settings.curve_ks if k <= n_items) or (n_items,),
        k=min(settings.k, n_items),
        n_buckets=settings.pop_buckets,
    )
    scorer = model.scorer()
    with torch.no_grad():
        for begin in range(0, len(users), settings.batch_size):
            batch = users[begin : begin + settings.batch_size]
            scores = (
                scorer(torch.from_numpy(batch))
                .to(torch.float32)
                .clone(memory_format=torch.contiguous_format)
            )
            ranking.add_batch(batch, scores)
    per_user = {name: np.concatenate(parts) for name, parts in ranking.curve.items()}
    curve_out: dict[str, list[Any]] = {"ks": list(ranking.curve_ks)}
    for metric in ("recall", "ndcg", "hitrate"):
        curve_out[metric] = [float(per_user[f"{metric}@{kk}"].mean()) for kk in ranking.curve_ks]
    degree = np.diff(sp.csr_matrix(data.train).indptr)[users]
    return {
        "split": settings.split,
        "k": ranking.k,
        "users": int(len(users)),
        "items": int(n_items),
        "curve": curve_out,
        "popularity_buckets": _popularity_rows(ranking, popularity, target),
        "user_buckets": _user_rows(per_user, degree, ranking.k, settings.user_buckets),
    }
