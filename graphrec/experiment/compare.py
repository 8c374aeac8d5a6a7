"""Aggregate runs over seeds and test every variant against the baseline.

Statistics used (documented in the README and tested by hand in
``tests/experiment/test_significance.py``):

* **Table cells** are the mean ± sample standard deviation (``ddof=1``; 0 with one
  seed) over seeds of each run's mean metric on the split.
* **Paired tests pair users, not seeds.**  For each variant the per-user metric
  vectors of its seeds are averaged per user (a user's value is the mean over the
  seeds; users evaluated in every seed), which removes the seed noise from each
  user's value; the seed-averaged vectors of a variant and of the baseline are then
  paired by user id and compared with the Wilcoxon signed-rank test and the paired
  t-test (:func:`graphrec.evaluation.paired_tests`).  With 3 seeds there would be
  too few pairs to test seeds against seeds, while there are hundreds of users.
* **Multiple comparisons**: the p-values of the chosen test are corrected with
  Holm's step-down method (default) over a *family*: ``per_metric`` = the
  (variants - 1) comparisons against the baseline for one metric, or ``all`` =
  every (variant, metric) comparison in the table.
* **Marks**: ``▲``/``▼`` = the variant is higher/lower than the baseline, ``*`` =
  corrected p < alpha, ``**`` = corrected p < alpha / 5 (0.01 for alpha 0.05).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from graphrec.errors import ConfigError
from graphrec.evaluation import EvaluationResult, markdown_table, paired_tests
from graphrec.evaluation.significance import adjust_pvalues
from graphrec.experiment.config import SignificanceConfig
from graphrec.experiment.runs import RunRecord

__all__ = [
    "Comparison",
    "MetricSummary",
    "VariantSummary",
    "compare_to_baseline",
    "default_metrics",
    "format_experiment_table",
    "format_significance_table",
    "seed_averaged",
    "significance_marker",
    "summarize_variant",
]


@dataclass
class MetricSummary:
    """Mean and sample standard deviation of one quantity over seeds."""

    mean: float
    std: float
    values: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, values: Sequence[float]) -> MetricSummary:
        arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
        if len(arr) == 0:
            return cls(math.nan, math.nan, [])
        std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
        return cls(float(arr.mean()), std, arr.tolist())

    def format(self, digits: int = 4) -> str:
        if not math.isfinite(self.mean):
            return "-"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass
class VariantSummary:
    """One variant's runs summarised over seeds."""

    name: str
    label: str
    seeds: list[int]
    metrics: dict[str, MetricSummary]
    train_seconds: MetricSummary
    best_epoch: MetricSummary
    epochs_run: MetricSummary


@dataclass
class Comparison:
    """A variant against the baseline on one metric (per-user values averaged over seeds)."""

    variant: str
    baseline: str
    metric: str
    n_users: int
    mean_baseline: float
    mean_variant: float
    rel_improvement: float
    p_wilcoxon: float
    p_ttest: float
    p_value: float
    p_adjusted: float
    test: str
    correction: str
    mark: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def default_metrics(ks: Sequence[int], available: Sequence[str] = ("recall", "ndcg")) -> list[str]:
    """``recall@K`` and ``ndcg@K`` for every cut-off (the table's default columns)."""
    return [f"{m}@{k}" for m in available for k in ks]


def summarize_variant(
    name: str, label: str, records: Sequence[RunRecord], metrics: Sequence[str], split: str = "test"
) -> VariantSummary:
    """Mean ± std over the variant's seeds of each metric, training time and epochs."""
    metric_values: dict[str, list[float]] = {m: [] for m in metrics}
    for record in records:
        values = record.metrics(split)
        for m in metrics:
            if m not in values:
                raise ConfigError(
                    f"metric {m!r} is not in {record.run_dir}/results.json ({split}); available: {', '.join(values)}"
                )
            metric_values[m].append(values[m])
    return VariantSummary(
        name=name,
        label=label,
        seeds=[r.seed for r in records],
        metrics={m: MetricSummary.of(v) for m, v in metric_values.items()},
        train_seconds=MetricSummary.of([r.train_seconds for r in records]),
        best_epoch=MetricSummary.of([r.best_epoch for r in records]),
        epochs_run=MetricSummary.of([r.epochs_run for r in records]),
    )


def seed_averaged(results: Sequence[EvaluationResult]) -> EvaluationResult:
    """Per-user metric vectors averaged over seeds, on the users every seed evaluated.

    All results must come from the same split, so they evaluate the same users;
    the intersection only guards against a run evaluated with different settings.
    """
    if not results:
        raise ValueError("no result to average")
    users = results[0].users
    for res in results[1:]:
        users = np.intersect1d(users, res.users, assume_unique=True)
    if len(users) == 0:
        raise ValueError("the runs have no evaluated user in common")
    names = [m for m in results[0].per_user if all(m in r.per_user for r in results)]
    per_user = {}
    for m in names:
        stacked = []
        for res in results:
            index = (
                np.searchsorted(res.users, users)
                if np.all(np.diff(res.users) > 0)
                else np.array([int(np.flatnonzero(res.users == u)[0]) for u in users])
            )
            stacked.append(np.asarray(res.per_user[m], dtype=np.float64)[index])
        per_user[m] = np.mean(stacked, axis=0)
    metrics = {m: float(v.mean()) for m, v in per_user.items()}
    return EvaluationResult(
        metrics=metrics,
        per_user=per_user,
        users=users.astype(np.int64),
        num_users=len(users),
        seconds=0.0,
        meta={"seed_averaged": len(results)},
    )


def significance_marker(
    mean_variant: float, mean_baseline: float, p_adjusted: float, alpha: float
) -> str:
    """``▲*``/``▼**``... : direction and significance of a comparison ('' when not significant)."""
    if p_adjusted is None or not math.isfinite(p_adjusted) or p_adjusted >= alpha:
        return ""
    arrow = "▲" if mean_variant > mean_baseline else "▼"
    return arrow + ("**" if p_adjusted < alpha / 5 else "*")


def compare_to_baseline(
    groups: Mapping[str, Sequence[RunRecord]],
    baseline: str,
    metrics: Sequence[str],
    significance: SignificanceConfig | None = None,
) -> list[Comparison]:
    """Paired tests of each variant against ``baseline`` on every per-user metric in ``metrics``.

    Metrics without per-user values (coverage, gini, avg_popularity) are skipped.
    Returns comparisons in (variant, metric) order with Holm-adjusted p-values.
    """
    sig = significance or SignificanceConfig()
    if baseline not in groups:
        raise ConfigError(
            f"baseline {baseline!r} has no finished run; variants with runs: {', '.join(groups)}"
        )
    averaged = {
        name: seed_averaged([r.per_user(sig.split) for r in records])
        for name, records in groups.items()
        if records
    }
    base = averaged[baseline]
    rows: list[Comparison] = []
    for name, res in averaged.items():
        if name == baseline:
            continue
        common, ia, ib = np.intersect1d(
            base.users, res.users, assume_unique=True, return_indices=True
        )
        for metric in metrics:
            if metric not in base.per_user or metric not in res.per_user:
                continue
            t = paired_tests(base.per_user[metric][ia], res.per_user[metric][ib])
            p = t["p_wilcoxon"] if sig.test == "wilcoxon" else t["p_ttest"]
            rows.append(
                Comparison(
                    variant=name,
                    baseline=baseline,
                    metric=metric,
                    n_users=int(len(common)),
                    mean_baseline=t["mean_a"],
                    mean_variant=t["mean_b"],
                    rel_improvement=t["rel_improvement"],
                    p_wilcoxon=t["p_wilcoxon"],
                    p_ttest=t["p_ttest"],
                    p_value=p,
                    p_adjusted=math.nan,
                    test=sig.test,
                    correction=sig.correction,
                    mark="",
                )
            )
    families: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        families.setdefault(row.metric if sig.family == "per_metric" else "all", []).append(i)
    for members in families.values():
        adjusted = adjust_pvalues([rows[i].p_value for i in members], sig.correction)
        for i, p_adj in zip(members, adjusted):
            rows[i].p_adjusted = float(p_adj)
            rows[i].mark = significance_marker(
                rows[i].mean_variant, rows[i].mean_baseline, rows[i].p_adjusted, sig.alpha
            )
    return rows


def format_experiment_table(
    summaries: Sequence[VariantSummary],
    comparisons: Sequence[Comparison],
    metrics: Sequence[str],
    baseline: str,
    significance: SignificanceConfig | None = None,
    baseline_label: str | None = None,
) -> str:
    """The experiment's comparison table: mean ± std per metric, marks, seeds, training time."""
    sig = significance or SignificanceConfig()
    baseline_label = baseline_label or baseline
    marks = {(c.variant, c.metric): c.mark for c in comparisons}
    header = ["variant", "seeds", *metrics, "train s", "best epoch"]
    body = []
    for s in summaries:
        name = s.label + (" (baseline)" if s.name == baseline else "")
        cells = [name, str(len(s.seeds))]
        for m in metrics:
            digits = 2 if m.startswith("avg_popularity") else 4
            mark = marks.get((s.name, m), "")
            cells.append(s.metrics[m].format(digits) + (f" {mark}" if mark else ""))
        cells.append(s.train_seconds.format(1))
        cells.append(f"{s.best_epoch.mean:.0f}" if math.isfinite(s.best_epoch.mean) else "-")
        body.append(cells)
    lines = markdown_table(header, body, right_from=1)
    correction = {
        "holm": "Holm-corrected",
        "bonferroni": "Bonferroni-corrected",
        "none": "uncorrected",
    }[sig.correction]
    test = "Wilcoxon signed-rank" if sig.test == "wilcoxon" else "paired t-test"
    lines += [
        "",
        f"mean ± std over seeds ({sig.split} split); ▲/▼ vs {baseline_label}: {test} on per-user values averaged "
        f"over seeds, {correction} ({sig.family.replace('_', ' ')}); * p < {sig.alpha:g}, ** p < {sig.alpha / 5:g}; "
        "train s = training + validation seconds per run",
    ]
    return "\n".join(lines)


def _fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.4f}"


def format_significance_table(
    comparisons: Sequence[Comparison], labels: Mapping[str, str] | None = None
) -> str:
    """One row per (variant, metric): Δ%, raw p-values of both tests, corrected p and mark."""
    labels = labels or {}
    header = [
        "variant",
        "metric",
        "baseline",
        "variant mean",
        "Δ%",
        "p Wilcoxon",
        "p t-test",
        "p corrected",
        "sig",
    ]
    body = [
        [
            labels.get(c.variant, c.variant),
            c.metric,
            f"{c.mean_baseline:.4f}",
            f"{c.mean_variant:.4f}",
            "n/a" if not math.isfinite(c.rel_improvement) else f"{100 * c.rel_improvement:+.2f}%",
            _fmt_p(c.p_wilcoxon),
            _fmt_p(c.p_ttest),
            _fmt_p(c.p_adjusted),
            c.mark,
        ]
        for c in comparisons
    ]
    lines = markdown_table(header, body, right_from=2)
    if comparisons:
        c = comparisons[0]
        lines += [
            "",
            f"n = {c.n_users} users; p corrected = {c.correction} over the {c.test} p-values",
        ]
    return "\n".join(lines)
