"""Full-ranking top-K evaluation of a scoring function.

Protocol (identical for every model, which is what makes numbers comparable):

* every user with at least one target item is evaluated (users without target
  items are skipped); a target item is a stored entry with a value > 0;
* the scorer scores *all* items for a batch of users; the items stored in the
  ``exclude`` matrices (the user's training items, optionally also validation
  items) get ``-inf`` and are never recommended;
* the top-K list is the first K items in the order ``(-score, item index)``,
  i.e. ties are broken towards the lower item index (see
  :mod:`graphrec.evaluation.ranking`);
* accuracy metrics are computed per user and averaged over the evaluated users;
  coverage, Gini and average popularity are computed over all top-K lists
  (see :mod:`graphrec.evaluation.metrics`).

Nothing of size ``n_users x n_items`` is ever materialised densely: one
``[rows, n_items]`` score block of at most ``max_block_mb`` lives at a time.
"""

from __future__ import annotations

import json
import math
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data.dataset import InteractionData
from graphrec.errors import DataFormatError
from graphrec.evaluation.metrics import (
    ACCURACY_METRICS,
    BEYOND_ACCURACY_METRICS,
    accuracy_metrics,
    average_popularity,
    coverage,
    gini_index,
)
from graphrec.evaluation.ranking import (
    NaNScoresError,
    gather_csr_rows,
    mask_scores,
    restore_scores,
    topk_with_ties,
)
from graphrec.io import atomic_open, atomic_write_json

__all__ = ["Scorer", "EvaluationResult", "Evaluator", "evaluate_scorer", "TIE_RULE"]

Scorer = Callable[[torch.Tensor], torch.Tensor]
"""``users`` (LongTensor ``[B]`` of internal user ids) -> scores (float tensor ``[B, n_items]``)."""

TIE_RULE = "equal scores: lower item index ranks first"

_PER_USER_PREFIX = "per_user."


# --------------------------------------------------------------------- result
@dataclass
class EvaluationResult:
    """Outcome of one evaluation.

    Attributes:
        metrics: mean metrics, e.g. ``{"recall@20": 0.14, "ndcg@20": ..., "coverage@20": ...}``.
        per_user: per-user values of the accuracy metrics, each aligned with ``users``.
        users: internal ids of the evaluated users (int64).
        num_users: number of evaluated users (``len(users)``).
        seconds: wall-clock time of the evaluation.
        meta: protocol details (cut-offs, number of items, masking, tie rule, ...).
    """

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    users: np.ndarray
    num_users: int
    seconds: float
    meta: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    @staticmethod
    def paths(path: str | Path) -> tuple[Path, Path]:
        """``(npz path, json path)`` used by :meth:`save`/:meth:`load` for ``path``.

        ``results/test`` and ``results/test.npz`` both map to
        ``results/test.npz`` + ``results/test.metrics.json``.
        """
        p = Path(path)
        if p.suffix != ".npz":
            p = p.with_name(p.name + ".npz")
        return p, p.with_suffix(".metrics.json")

    def save(self, path: str | Path) -> None:
        """Write per-user values + users to ``<path>.npz`` and the rest to ``<stem>.metrics.json``.

        Both files are written atomically.
        """
        npz_path, json_path = self.paths(path)
        # Any, not ndarray: savez's stub types **kwds beside its allow_pickle: bool keyword
        arrays: dict[str, Any] = {"users": np.asarray(self.users, dtype=np.int64)}
        for name, values in self.per_user.items():
            arrays[_PER_USER_PREFIX + name] = np.asarray(values, dtype=np.float64)
        with atomic_open(npz_path, "wb") as handle:
            np.savez(handle, **arrays)
        atomic_write_json(
            json_path,
            {
                "metrics": {k: float(v) for k, v in self.metrics.items()},
                "num_users": int(self.num_users),
                "seconds": float(self.seconds),
                "per_user_metrics": list(self.per_user),
                "meta": self.meta,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> EvaluationResult:
        """Read a result written by :meth:`save` (give the same ``path``).

        A missing, truncated or corrupt file is a :class:`DataFormatError` naming it.
        """
        npz_path, json_path = cls.paths(path)
        try:
            return cls._load(npz_path, json_path)
        except DataFormatError:
            raise
        except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise DataFormatError(
                f"corrupt evaluation result ({type(exc).__name__}: {detail})", path=npz_path
            ) from None

    @classmethod
    def _load(cls, npz_path: Path, json_path: Path) -> EvaluationResult:
        for p in (npz_path, json_path):
            if not p.exists():
                raise DataFormatError("evaluation result file not found", path=p)
        try:
            info = json.loads(json_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"invalid JSON: {exc}", path=json_path, line=exc.lineno) from exc
        for key in ("metrics", "num_users", "seconds"):
            if key not in info:
                raise DataFormatError("missing key", path=json_path, field=key)
        with np.load(npz_path, allow_pickle=False) as data:
            if "users" not in data.files:
                raise DataFormatError("missing array", path=npz_path, field="users")
            users = data["users"].astype(np.int64)
            names = info.get("per_user_metrics") or [
                f[len(_PER_USER_PREFIX) :] for f in data.files if f.startswith(_PER_USER_PREFIX)
            ]
            per_user = {}
            for name in names:
                key = _PER_USER_PREFIX + name
                if key not in data.files:
                    raise DataFormatError("missing per-user array", path=npz_path, field=key)
                per_user[name] = data[key]
                if len(per_user[name]) != len(users):
                    raise DataFormatError(
                        f"{len(per_user[name])} values for {len(users)} users",
                        path=npz_path,
                        field=key,
                    )
        if int(info["num_users"]) != len(users):
            raise DataFormatError(
                f"num_users is {info['num_users']} but {npz_path.name} holds {len(users)} users",
                path=json_path,
                field="num_users",
            )
        return cls(
            metrics={k: float(v) for k, v in info["metrics"].items()},
            per_user=per_user,
            users=users,
            num_users=int(info["num_users"]),
            seconds=float(info["seconds"]),
            meta=dict(info.get("meta") or {}),
        )


# ------------------------------------------------------------------ evaluator
class Evaluator:
    """Batched full-ranking evaluator.

    Args:
        ks: cut-offs K (positive integers); duplicates removed, sorted ascending.
        metrics: accuracy metrics, a subset of :data:`ACCURACY_METRICS`
            (``recall ndcg precision hitrate mrr map``).
        batch_size: users scored per call of the scorer, at most; the evaluator scores
            fewer at a time when ``batch_size x n_items`` scores would exceed
            ``max_block_mb`` (see there).
        item_popularity: training-interaction count per item (``[n_items]``); enables
            ``avg_popularity@K``.  :func:`evaluate_scorer` passes
            ``data.item_popularity()``.
        device: where scores are ranked; the scorer's output is moved there.
        beyond_accuracy: also compute ``coverage@K`` and ``gini@K`` (and
            ``avg_popularity@K`` when ``item_popularity`` is given).
        progress: show a tqdm progress bar over batches.
        max_block_mb: largest score block (``rows x n_items`` values) in MiB.  Small blocks
            bound the memory at any catalogue size and are also faster: a block that
            stays within the CPU cache is masked and ranked there, and the allocator
            reuses it instead of mapping fresh pages for every batch (about 2x faster
            full ranking on Amazon-book than 4096-user blocks).
    """

    def __init__(
        self,
        ks: Iterable[int] = (10, 20),
        metrics: Sequence[str] = ACCURACY_METRICS,
        batch_size: int = 1024,
        item_popularity: np.ndarray | None = None,
        device: str | torch.device = "cpu",
        beyond_accuracy: bool = True,
        progress: bool = False,
        max_block_mb: float = 8.0,
    ) -> None:
        if isinstance(ks, (int, np.integer)):
            ks = (int(ks),)
        ks = tuple(ks)
        if not ks or any(isinstance(k, bool) or int(k) != k or int(k) < 1 for k in ks):
            raise ValueError(f"ks must be positive integers, got {ks!r}")
        self.ks: tuple[int, ...] = tuple(sorted({int(k) for k in ks}))
        if isinstance(metrics, str):
            metrics = (metrics,)
        metrics = tuple(metrics)
        unknown = [m for m in metrics if m not in ACCURACY_METRICS]
        if unknown:
            hint = (
                " (coverage, gini and avg_popularity are controlled by beyond_accuracy=)"
                if any(m in BEYOND_ACCURACY_METRICS for m in unknown)
                else ""
            )
            raise ValueError(
                f"unknown metric(s) {unknown}; expected a subset of {ACCURACY_METRICS}{hint}"
            )
        if not metrics:
            raise ValueError("metrics must name at least one accuracy metric")
        self.metrics: tuple[str, ...] = tuple(dict.fromkeys(metrics))
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.item_popularity = (
            None if item_popularity is None else np.asarray(item_popularity, dtype=np.float64)
        )
        if self.item_popularity is not None and self.item_popularity.ndim != 1:
            raise ValueError(f"item_popularity must be 1-D, got shape {self.item_popularity.shape}")
        self.device = torch.device(device)
        self.beyond_accuracy = bool(beyond_accuracy)
        self.progress = bool(progress)
        if not max_block_mb > 0:
            raise ValueError(f"max_block_mb must be positive, got {max_block_mb!r}")
        self.max_block_mb = float(max_block_mb)

    def rows_per_block(self, n_items: int) -> int:
        """Users scored per call of the scorer for a catalogue of ``n_items`` items."""
        fit = int(self.max_block_mb * 2**20) // (4 * max(1, n_items))
        return max(1, min(self.batch_size, fit))

    # ------------------------------------------------------------------ main
    def evaluate(
        self,
        scorer: Scorer,
        target: sp.spmatrix,
        exclude: Sequence[sp.spmatrix] | sp.spmatrix = (),
        users: np.ndarray | Sequence[int] | None = None,
        progress: bool | None = None,
    ) -> EvaluationResult:
        """Rank all items for every evaluated user and compute the metrics.

        Args:
            scorer: ``users [B] (LongTensor on device) -> scores [B, n_items]``.  Called
                under ``torch.no_grad()``.  A score of ``-inf`` means "never recommend";
                NaN scores raise ``ValueError``.  The returned tensor may be modified
                during ranking but is restored before the next call.
            target: ``[n_users, n_items]`` sparse matrix of held-out items; entries > 0
                are the targets.
            exclude: sparse matrices (same shape) whose stored non-zero entries are
                masked, e.g. ``[train]`` or ``[train, valid]``; a single matrix is accepted.
            users: internal user ids to evaluate (order kept; must be unique); users
                without target items are skipped.  Default: all users with targets.
            progress: override the evaluator's ``progress`` setting.

        Returns:
            An :class:`EvaluationResult`.
        """
        started = time.perf_counter()
        target = _prepare_matrix(target, "target", None, positive_only=True)
        n_users, n_items = target.shape
        if exclude is None:
            exclude = ()
        elif sp.issparse(exclude):
            exclude = [exclude]
        masks = [
            _prepare_matrix(m, f"exclude[{i}]", target.shape, positive_only=False)
            for i, m in enumerate(exclude)
        ]
        popularity = self.item_popularity
        if popularity is not None and len(popularity) != n_items:
            raise ValueError(
                f"item_popularity has {len(popularity)} entries but there are {n_items} items"
            )

        n_target = np.diff(target.indptr).astype(np.int64)
        users, requested = _evaluated_users(users, n_target, n_users)
        show = self.progress if progress is None else bool(progress)
        step = self.rows_per_block(n_items)
        per_user, counts = self._rank_all(scorer, target, masks, users, n_target, step, show)
        metrics = {name: float(values.mean()) for name, values in per_user.items()}
        if counts is not None:
            metrics.update(_beyond_accuracy(counts, self.ks, popularity))
        meta = {
            "protocol": "full ranking over all items",
            "tie_rule": TIE_RULE,
            "ks": list(self.ks),
            "n_users": int(n_users),
            "n_items": int(n_items),
            "n_exclude_matrices": len(masks),
            "skipped_users": int(requested - len(users)),
            "batch_size": self.batch_size,
            "rows_per_block": step,
        }
        return EvaluationResult(
            metrics=metrics,
            per_user=per_user,
            users=users.astype(np.int64, copy=False),
            num_users=len(users),
            seconds=time.perf_counter() - started,
            meta=meta,
        )

    def _rank_all(
        self,
        scorer: Scorer,
        target: sp.csr_matrix,
        masks: list[sp.csr_matrix],
        users: np.ndarray,
        n_target: np.ndarray,
        step: int,
        show: bool,
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Rank ``users`` in blocks of ``step`` rows: per-user accuracy vectors and, with
        ``beyond_accuracy``, ``[len(ks), n_items]`` counts of each item in the top-k lists."""
        ks = self.ks
        n_items = target.shape[1]
        length = min(max(ks), n_items)
        per_user_parts: dict[str, list[np.ndarray]] = {}
        counts = np.zeros((len(ks), n_items), dtype=np.int64) if self.beyond_accuracy else None
        n_batches = math.ceil(len(users) / step)
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_batches, desc="evaluate", unit="batch", leave=False)
        try:
            with torch.no_grad():
                for begin in range(0, len(users), step):
                    batch = users[begin : begin + step]
                    top, top_valid = self._rank_batch(scorer, batch, masks, n_items, length)
                    # The rest works on [B, K] arrays only: NumPy on the host.
                    indices = top.cpu().numpy()
                    valid = top_valid.cpu().numpy()
                    # relevance: membership of (row, item) keys in the batch's sorted target keys
                    local, cols = gather_csr_rows(target, batch)
                    target_keys = (
                        local * n_items + cols
                    )  # sorted: canonical CSR, rows in batch order
                    keys = np.arange(len(batch), dtype=np.int64)[:, None] * n_items + indices
                    found = np.minimum(np.searchsorted(target_keys, keys), len(target_keys) - 1)
                    hits = (target_keys[found] == keys) & valid
                    for name, values in accuracy_metrics(
                        hits, n_target[batch], ks, self.metrics
                    ).items():
                        per_user_parts.setdefault(name, []).append(values)
                    if counts is not None:
                        for row, k in enumerate(ks):
                            counts[row] += np.bincount(
                                indices[:, :k][valid[:, :k]], minlength=n_items
                            )
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        per_user = {name: np.concatenate(parts) for name, parts in per_user_parts.items()}
        return per_user, counts

    # --------------------------------------------------------------- helpers
    def _rank_batch(
        self,
        scorer: Scorer,
        batch: np.ndarray,
        masks: list[sp.csr_matrix],
        n_items: int,
        length: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score, mask and rank one batch; returns ``(indices [B, L], valid [B, L])``."""
        users_t = torch.from_numpy(batch).to(self.device)
        raw = scorer(users_t)
        scores, owned = self._as_scores(raw, len(batch), n_items)
        saved: list[tuple[torch.Tensor, torch.Tensor]] = []
        try:
            for matrix in masks:
                local, cols = gather_csr_rows(matrix, batch)
                old = mask_scores(scores, local, cols, keep_old=not owned)
                if old is not None:
                    saved.append(old)
            values, indices = topk_with_ties(scores, length)
        except NaNScoresError as exc:
            examples = batch[np.asarray(exc.rows[:5], dtype=np.int64)].tolist()
            raise ValueError(f"scorer returned NaN scores (e.g. for users {examples})") from None
        finally:
            # put the caller's scores back (reverse order: overlapping masks restore the original)
            for old in reversed(saved):
                restore_scores(scores, old)
        valid = values != float("-inf")
        return indices, valid

    def _as_scores(self, raw, batch_len: int, n_items: int) -> tuple[torch.Tensor, bool]:
        """Validate the scorer output; returns ``(scores, owned)`` (owned = a private copy)."""
        if isinstance(raw, np.ndarray):
            raw = torch.from_numpy(raw) if raw.flags.writeable else torch.tensor(raw)
        if not isinstance(raw, torch.Tensor):
            raise TypeError(f"scorer must return a torch.Tensor, got {type(raw).__name__}")
        if tuple(raw.shape) != (batch_len, n_items):
            raise ValueError(
                f"scorer returned shape {tuple(raw.shape)}, expected ({batch_len}, {n_items})"
            )
        scores = raw
        if not scores.is_floating_point():
            scores = scores.to(torch.float32)
        if scores.device != self.device:
            scores = scores.to(self.device)
        if scores is raw and (raw.is_inference() or not raw.is_contiguous()):
            scores = raw.clone(memory_format=torch.contiguous_format)
        elif not scores.is_contiguous():
            scores = scores.contiguous()
        return scores, scores is not raw


def _prepare_matrix(
    matrix, name: str, shape: tuple[int, int] | None, positive_only: bool
) -> sp.csr_matrix:
    """CSR view of ``matrix`` holding only the entries that count (no explicit zeros)."""
    if not sp.issparse(matrix):
        raise TypeError(f"{name} must be a scipy sparse matrix, got {type(matrix).__name__}")
    if shape is not None and matrix.shape != shape:
        raise ValueError(f"{name} has shape {matrix.shape}, expected {shape} (users x items)")
    csr = sp.csr_matrix(matrix)  # no copy when already csr_matrix
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    keep = csr.data > 0 if positive_only else csr.data != 0
    if not keep.all():
        csr = csr.copy()
        csr.data = keep.astype(csr.data.dtype)
        csr.eliminate_zeros()
    return csr


def _check_users(users, n_users: int) -> np.ndarray:
    arr = np.asarray(users)
    if arr.ndim != 1:
        raise ValueError(f"users must be a 1-D array of user ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"users must be integer ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_users):
        raise ValueError(
            f"user ids must be in [0, {n_users}), got range [{arr.min()}, {arr.max()}]"
        )
    if len(np.unique(arr)) != len(arr):
        raise ValueError("users contains duplicate ids")
    return arr


# ------------------------------------------------------------- convenience
def evaluate_scorer(
    scorer: Scorer,
    data: InteractionData,
    split: str = "test",
    ks: Iterable[int] = (10, 20),
    mask_valid: bool = False,
    users: np.ndarray | Sequence[int] | None = None,
    **kw,
) -> EvaluationResult:
    """Evaluate ``scorer`` on ``data``'s ``split`` (``"valid"`` or ``"test"``).

    Training items are always masked; with ``mask_valid=True`` and ``split="test"``
    validation items are masked too (if the dataset has a validation split).
    ``item_popularity`` defaults to ``data.item_popularity()``; other keyword
    arguments go to :class:`Evaluator` (``metrics``, ``batch_size``, ``device``,
    ``beyond_accuracy``, ``progress``).
    """
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    target = data.split(split)
    exclude = [data.train]
    if split == "test" and mask_valid and data.valid is not None:
        exclude.append(data.valid)
    kw.setdefault("item_popularity", data.item_popularity())
    evaluator = Evaluator(ks=ks, **kw)
    result = evaluator.evaluate(scorer, target, exclude=exclude, users=users)
    result.meta.update(
        {"dataset": data.name, "split": split, "mask_valid": bool(mask_valid and split == "test")}
    )
    return result


def _evaluated_users(
    users: np.ndarray | Sequence[int] | None, n_target: np.ndarray, n_users: int
) -> tuple[np.ndarray, int]:
    """The users to evaluate (those of ``users``, default all, that have a target) and how many
    were asked for; none left is a ``ValueError``."""
    if users is None:
        requested = int(n_users)
        chosen = np.flatnonzero(n_target > 0).astype(np.int64)
    else:
        checked = _check_users(users, n_users)
        requested = len(checked)
        chosen = checked[n_target[checked] > 0]
    if len(chosen) == 0:
        raise ValueError(
            f"no user to evaluate: none of the {requested} candidate users has a target item"
        )
    return chosen, requested


def _beyond_accuracy(
    counts: np.ndarray, ks: Sequence[int], popularity: np.ndarray | None
) -> dict[str, float]:
    """coverage@k, gini@k and (with item popularity) avg_popularity@k from top-k item counts."""
    metrics: dict[str, float] = {}
    for row, k in enumerate(ks):
        metrics[f"coverage@{k}"] = coverage(counts[row])
    for row, k in enumerate(ks):
        metrics[f"gini@{k}"] = gini_index(counts[row])
    if popularity is not None:
        for row, k in enumerate(ks):
            metrics[f"avg_popularity@{k}"] = average_popularity(counts[row], popularity)
    return metrics
