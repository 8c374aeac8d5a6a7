"""Paired significance tests between two evaluations of the same users.

Differences are always ``b - a``: a positive mean difference / relative
improvement means model B scores higher than model A.  No correction for
multiple comparisons is applied by :func:`paired_tests` and :func:`compare_results`;
the p-values are per metric.  :func:`holm_adjust` (Holm-Bonferroni step-down) and
:func:`bonferroni_adjust` correct a family of p-values, e.g. the comparisons of
several models against one baseline (:mod:`graphrec.experiment` does that).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from graphrec.evaluation.evaluator import EvaluationResult
from graphrec.evaluation.report import markdown_table

__all__ = [
    "paired_tests",
    "compare_results",
    "format_comparison_table",
    "significance_mark",
    "holm_adjust",
    "bonferroni_adjust",
    "adjust_pvalues",
    "CORRECTIONS",
]

#: Multiple-comparison corrections understood by :func:`adjust_pvalues`.
CORRECTIONS = ("holm", "bonferroni", "none")


def paired_tests(a: np.ndarray, b: np.ndarray, zero_method: str = "wilcox") -> dict:
    """Paired Wilcoxon signed-rank and paired t-test of per-user values ``a`` vs ``b``.

    Args:
        a, b: per-user values of one metric for the same users in the same order.
        zero_method: passed to :func:`scipy.stats.wilcoxon` (default ``"wilcox"``:
            users with a zero difference are dropped, scipy's default).

    Returns:
        ``{"n", "mean_a", "mean_b", "mean_diff", "rel_improvement", "p_wilcoxon",
        "p_ttest", "wilcoxon_statistic", "t_statistic"}``.  ``mean_diff`` is
        ``mean(b - a)``; ``rel_improvement`` is ``(mean_b - mean_a) / |mean_a|`` (NaN
        when ``mean_a`` is 0).  When every difference is zero both p-values are 1.0;
        with a single user the t-test p-value is NaN.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"a and b must be 1-D arrays of equal length, got shapes {a.shape} and {b.shape}"
        )
    n = len(a)
    if n == 0:
        raise ValueError("paired tests need at least one pair")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired tests need finite values (found NaN or inf)")
    diff = b - a
    mean_a, mean_b = float(a.mean()), float(b.mean())
    out = {
        "n": int(n),
        "mean_a": mean_a,
        "mean_b": mean_b,
        "mean_diff": float(diff.mean()),
        "rel_improvement": (mean_b - mean_a) / abs(mean_a) if mean_a != 0 else math.nan,
    }
    if not diff.any():
        out.update(p_wilcoxon=1.0, p_ttest=1.0, wilcoxon_statistic=math.nan, t_statistic=0.0)
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        w = stats.wilcoxon(b, a, zero_method=zero_method)
        if n >= 2:
            t = stats.ttest_rel(b, a)
            t_stat, t_p = float(t.statistic), float(t.pvalue)
        else:
            t_stat, t_p = math.nan, math.nan
    out.update(
        p_wilcoxon=float(w.pvalue),
        p_ttest=t_p,
        wilcoxon_statistic=float(w.statistic),
        t_statistic=t_stat,
    )
    return out


def compare_results(
    a: EvaluationResult,
    b: EvaluationResult,
    metrics: Sequence[str] | None = None,
    zero_method: str = "wilcox",
) -> list[dict]:
    """Paired tests for each per-user metric on the users both results evaluated.

    Users are aligned by internal id (intersection); means in the rows are over
    those common users, so they can differ from ``a.metrics`` when the user sets
    differ.

    Args:
        a, b: two evaluation results (B is compared against A).
        metrics: per-user metric names; default: those present in both, in A's order.

    Returns:
        One dict per metric: ``{"metric", **paired_tests(...), "n_only_a", "n_only_b"}``.

    Raises:
        ValueError: no user in common, or a requested metric is missing.
    """
    common, ia, ib = np.intersect1d(
        np.asarray(a.users, dtype=np.int64),
        np.asarray(b.users, dtype=np.int64),
        assume_unique=True,
        return_indices=True,
    )
    if len(common) == 0:
        raise ValueError("the two results have no evaluated user in common")
    if metrics is None:
        metrics = [m for m in a.per_user if m in b.per_user]
        if not metrics:
            raise ValueError("the two results share no per-user metric")
    else:
        if isinstance(metrics, str):
            metrics = [metrics]
        for m in metrics:
            for label, res in (("A", a), ("B", b)):
                if m not in res.per_user:
                    raise ValueError(
                        f"metric {m!r} has no per-user values in result {label} (has {list(res.per_user)})"
                    )
    rows = []
    for m in metrics:
        row: dict[str, Any] = {"metric": m}
        row.update(
            paired_tests(
                np.asarray(a.per_user[m])[ia],
                np.asarray(b.per_user[m])[ib],
                zero_method=zero_method,
            )
        )
        row["n_only_a"] = int(len(a.users) - len(common))
        row["n_only_b"] = int(len(b.users) - len(common))
        rows.append(row)
    return rows


def significance_mark(p: float) -> str:
    """``"**"`` for p < 0.01, ``"*"`` for p < 0.05, else ``""`` (NaN -> ``""``)."""
    if p is None or not np.isfinite(p):
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def _fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.4f}"


def _fmt_pct(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{100.0 * x:+.2f}%"


def format_comparison_table(rows: Sequence[dict], name_a: str = "A", name_b: str = "B") -> str:
    """Markdown table of :func:`compare_results` rows.

    Columns: metric, mean of A, mean of B, relative change of B over A (Δ%),
    Wilcoxon p, t-test p and a significance mark from the Wilcoxon p-value
    (``*`` p < 0.05, ``**`` p < 0.01).
    """
    header = ["metric", name_a, name_b, "Δ%", "p Wilcoxon", "p t-test", "sig"]
    body = [
        [
            str(r["metric"]),
            f"{r['mean_a']:.4f}",
            f"{r['mean_b']:.4f}",
            _fmt_pct(r["rel_improvement"]),
            _fmt_p(r["p_wilcoxon"]),
            _fmt_p(r["p_ttest"]),
            significance_mark(r["p_wilcoxon"]),
        ]
        for r in rows
    ]
    lines = markdown_table(header, body, right_from=1)
    if rows:
        n = rows[0]["n"]
        lines.append("")
        lines.append(
            f"n = {n} common users; Δ% = ({name_b} - {name_a}) / {name_a}; "
            "sig from the Wilcoxon signed-rank test: * p < 0.05, ** p < 0.01 (no multiple-comparison correction)"
        )
    return "\n".join(lines)


# ------------------------------------------------------------ multiple comparisons
def _as_pvalues(pvalues: Sequence[float]) -> np.ndarray:
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p-values must be a 1-D sequence, got shape {p.shape}")
    finite = p[np.isfinite(p)]
    if ((finite < 0) | (finite > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    return p


def holm_adjust(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (same order as the input).

    With the m finite p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the
    adjusted values are ``p~_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j))``; a
    hypothesis is rejected at level alpha when its adjusted p-value is below alpha,
    which controls the family-wise error rate like Bonferroni but rejects more.
    NaN p-values (a test that could not run) stay NaN and do not count in m.
    Ties keep their input order (the result does not depend on it).

    Example: ``holm_adjust([0.01, 0.04, 0.03, 0.005])`` is ``[0.03, 0.06, 0.06, 0.02]``.
    """
    p = _as_pvalues(pvalues)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def bonferroni_adjust(pvalues: Sequence[float]) -> np.ndarray:
    """Bonferroni adjusted p-values ``min(1, m * p)``; NaN stays NaN and does not count in m."""
    p = _as_pvalues(pvalues)
    m = int(np.isfinite(p).sum())
    return np.minimum(1.0, p * m)


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> np.ndarray:
    """Correct a family of p-values: ``method`` is ``holm``, ``bonferroni`` or ``none``."""
    if method == "holm":
        return holm_adjust(pvalues)
    if method == "bonferroni":
        return bonferroni_adjust(pvalues)
    if method == "none":
        return _as_pvalues(pvalues).copy()
    raise ValueError(
        f"unknown multiple-comparison correction {method!r}; expected one of {', '.join(CORRECTIONS)}"
    )
