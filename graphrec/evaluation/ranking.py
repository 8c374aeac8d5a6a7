"""Deterministic top-K ranking over all items, with masking from CSR rows.

Tie rule (part of the protocol): items are ranked by decreasing score and, among
equal scores, by increasing item index.  The top-K list of a user is therefore
the first K items of the total order ``(-score, item index)``; the prefix of
length k < K of that list is the top-k list, so one ranking at ``max(ks)`` serves
every cut-off.

Masked items get the score ``-inf``.  A position of the ranking whose score is
``-inf`` (a masked item, or an item the scorer itself scored ``-inf``) is not a
recommendation: it can never be a hit and is not counted by coverage, Gini or
popularity.  This only happens when a user has fewer than K unmasked items.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["gather_csr_rows", "mask_scores", "topk_with_ties"]


def gather_csr_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stored entries of ``matrix`` in ``rows``, as ``(position in rows, column)`` arrays.

    Vectorised (no Python loop per row).  Within one row the columns keep the
    matrix's stored order (sorted when the matrix has sorted indices).

    Args:
        matrix: a CSR matrix.
        rows: row ids, shape ``[B]`` (any order, duplicates allowed).

    Returns:
        ``(local, cols)``: int64 arrays of equal length; ``local[j]`` is the index into
        ``rows`` (0..B-1) of entry ``j`` and ``cols[j]`` its column.
    """
    rows = np.asarray(rows, dtype=np.int64)
    indptr = matrix.indptr
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    local = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    offsets = np.cumsum(lengths) - lengths  # where each row's block starts in the output
    positions = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)
    return local, matrix.indices[positions].astype(np.int64, copy=False)


def mask_scores(
    scores: torch.Tensor, local: np.ndarray, cols: np.ndarray, keep_old: bool = False
) -> torch.Tensor | None:
    """Set ``scores[local, cols] = -inf`` in place (``index_put_``, no dense mask).

    With ``keep_old`` returns the overwritten values (so the caller can restore
    them); otherwise, or when nothing was masked, returns ``None``.
    """
    if len(local) == 0:
        return None
    index = (
        torch.from_numpy(np.ascontiguousarray(local)).to(scores.device),
        torch.from_numpy(np.ascontiguousarray(cols)).to(scores.device),
    )
    old = scores[index] if keep_old else None
    scores.index_put_(index, torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device))
    return old


def topk_with_ties(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` items per row under the deterministic order ``(-score, item index)``.

    ``torch.topk`` picks an arbitrary subset when the k-th and (k+1)-th largest
    scores are equal (a *boundary tie*), and orders equal scores arbitrarily.  This
    function computes ``topk(scores, k + 1)``; for the rows with a boundary tie
    only, it re-selects exactly: every item scoring above the threshold (the k-th
    largest score), then the lowest-index items scoring exactly the threshold.
    Finally each row's k items are ordered by ``(-score, item index)`` with a
    stable sort.

    Args:
        scores: ``[B, n_items]`` floating scores without NaN (``-inf`` allowed).
        k: list length; values above ``n_items`` are clipped to ``n_items``.

    Returns:
        ``(values, indices)``, both ``[B, min(k, n_items)]``, best first.
    """
    n_items = scores.shape[1]
    k = min(int(k), n_items)
    if k <= 0:
        empty = torch.zeros((scores.shape[0], 0), dtype=torch.long, device=scores.device)
        return scores.new_zeros((scores.shape[0], 0)), empty
    if k < n_items:
        values, indices = torch.topk(scores, k + 1, dim=1, largest=True, sorted=True)
        tie_rows = torch.nonzero(values[:, k - 1] == values[:, k], as_tuple=True)[0]
        values, indices = values[:, :k], indices[:, :k]
        if tie_rows.numel() > 0:
            block = scores[tie_rows]  # [R, n_items], only rows with a boundary tie
            threshold = values[tie_rows, k - 1].unsqueeze(1)
            greater = block > threshold
            equal = block == threshold
            need = k - greater.sum(dim=1, keepdim=True)  # >= 1 lowest-index ties to take
            take = equal & (torch.cumsum(equal, dim=1) <= need)
            selected = greater | take  # exactly k per row
            cols = torch.nonzero(selected, as_tuple=True)[1].view(-1, k)  # ascending item index
            indices = indices.clone()
            values = values.clone()
            indices[tie_rows] = cols
            values[tie_rows] = torch.gather(block, 1, cols)
    else:
        values, indices = torch.topk(scores, k, dim=1, largest=True, sorted=True)
    # Order by (-score, index): sort by index, then stable sort by descending score.
    indices, order = torch.sort(indices, dim=1)
    values = torch.gather(values, 1, order)
    values, order = torch.sort(values, dim=1, descending=True, stable=True)
    indices = torch.gather(indices, 1, order)
    return values, indices
