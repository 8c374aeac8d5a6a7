"""Holm correction and the experiment's paired tests, checked against values worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from graphrec.config import RunConfig
from graphrec.evaluation import EvaluationResult
from graphrec.evaluation.significance import adjust_pvalues, bonferroni_adjust, holm_adjust
from graphrec.experiment import SignificanceConfig, compare_to_baseline, seed_averaged
from graphrec.experiment.compare import MetricSummary, significance_marker
from graphrec.experiment.runs import RunRecord


# ------------------------------------------------------------------ Holm by hand
def test_holm_matches_the_step_down_worked_by_hand():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> max(0.06, 0.04) = 0.06)
    np.testing.assert_allclose(holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_monotonicity():
    # sorted 0.2 (x3 = 0.6), 0.3 (x2 = 0.6), 0.5 (x1 = 0.5 -> 0.6); 0.6 * ... never above 1
    np.testing.assert_allclose(holm_adjust([0.5, 0.2, 0.3]), [0.6, 0.6, 0.6])
    np.testing.assert_allclose(holm_adjust([0.4, 0.6]), [0.8, 0.8])
    np.testing.assert_allclose(holm_adjust([0.7, 0.9]), [1.0, 1.0])


def test_holm_of_one_p_value_is_the_p_value_and_nan_is_ignored():
    np.testing.assert_allclose(holm_adjust([0.037]), [0.037])
    out = holm_adjust([0.01, math.nan, 0.02])
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.02])  # m = 2, not 3
    assert holm_adjust([]).shape == (0,)


def test_holm_with_ties_does_not_depend_on_order():
    np.testing.assert_allclose(holm_adjust([0.01, 0.01, 0.04]), [0.03, 0.03, 0.04])
    np.testing.assert_allclose(holm_adjust([0.04, 0.01, 0.01]), [0.04, 0.03, 0.03])


def test_holm_is_never_more_conservative_than_bonferroni():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.random(rng.integers(1, 8)) ** 3
        assert np.all(holm_adjust(p) <= bonferroni_adjust(p) + 1e-15)
        assert np.all(holm_adjust(p) >= p - 1e-15)


def test_bonferroni_and_dispatch():
    np.testing.assert_allclose(bonferroni_adjust([0.01, 0.3]), [0.02, 0.6])
    np.testing.assert_allclose(adjust_pvalues([0.01, 0.3], "none"), [0.01, 0.3])
    np.testing.assert_allclose(
        adjust_pvalues([0.01, 0.04, 0.03, 0.005], "holm"), [0.03, 0.06, 0.06, 0.02]
    )
    with pytest.raises(ValueError, match="unknown multiple-comparison correction"):
        adjust_pvalues([0.1], "fdr")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_adjust([1.5])


# ------------------------------------------------------------------ experiment tests
def record(variant: str, seed: int, users, values: dict[str, list[float]]) -> RunRecord:
    per_user = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    res = EvaluationResult(
        metrics={k: float(v.mean()) for k, v in per_user.items()},
        per_user=per_user,
        users=np.asarray(users, dtype=np.int64),
        num_users=len(users),
        seconds=0.0,
    )
    config = RunConfig()
    config.train.seed = seed
    rec = RunRecord(
        run_dir=Path(f"/nonexistent/{variant}/seed{seed}"),
        config=config,
        results={"test": res.metrics, "best_epoch": 3, "epochs_run": 5},
        history=[{"epoch": 1, "train_seconds": 1.5, "eval_seconds": 0.5}],
        variant=variant,
    )
    rec._per_user["test"] = res
    return rec


# More than 50 users: scipy's Wilcoxon then uses its normal approximation (the exact /
# permutation path for small samples with ties takes seconds).
USERS = list(range(80))
BASE = np.round(np.random.default_rng(1).random(80) * 0.4, 3).tolist()


def test_seed_averaging_pairs_users_by_id_and_means_over_seeds():
    a = record("x", 1, [0, 1, 2], {"recall@20": [0.1, 0.2, 0.3]})
    b = record("x", 2, [0, 1, 2], {"recall@20": [0.3, 0.0, 0.3]})
    avg = seed_averaged([a.per_user(), b.per_user()])
    np.testing.assert_allclose(avg.per_user["recall@20"], [0.2, 0.1, 0.3])
    # a seed that evaluated fewer users: only the common users remain
    c = record("x", 3, [1, 2], {"recall@20": [0.4, 0.0]})
    avg = seed_averaged([a.per_user(), c.per_user()])
    np.testing.assert_array_equal(avg.users, [1, 2])
    np.testing.assert_allclose(avg.per_user["recall@20"], [0.3, 0.15])


def test_compare_to_baseline_uses_seed_averaged_vectors_and_holm_by_hand():
    rng = np.random.default_rng(7)
    b_up = [v + 0.01 + 0.01 * (i % 5) for i, v in enumerate(BASE)]
    c_noise = [v + d for v, d in zip(BASE, rng.normal(0, 0.03, len(BASE)))]
    groups = {
        "A": [record("A", s, USERS, {"recall@20": BASE}) for s in (1, 2)],
        # B's two seeds average to b_up: +0.01 and -0.01 around it
        "B": [
            record("B", 1, USERS, {"recall@20": [v + 0.01 for v in b_up]}),
            record("B", 2, USERS, {"recall@20": [v - 0.01 for v in b_up]}),
        ],
        "C": [record("C", s, USERS, {"recall@20": c_noise}) for s in (1, 2)],
    }
    rows = compare_to_baseline(
        groups, "A", ["recall@20"], SignificanceConfig(test="wilcoxon", correction="holm")
    )
    assert [(r.variant, r.metric) for r in rows] == [("B", "recall@20"), ("C", "recall@20")]
    p_b = stats.wilcoxon(np.array(b_up), np.array(BASE)).pvalue
    p_c = stats.wilcoxon(np.array(c_noise), np.array(BASE)).pvalue
    assert rows[0].p_wilcoxon == pytest.approx(p_b)
    assert rows[1].p_wilcoxon == pytest.approx(p_c)
    # Holm with m = 2 by hand: the smaller p doubles, the larger is max(itself, doubled smaller)
    lo, hi = sorted([p_b, p_c])
    expected = {p_b: None, p_c: None}
    expected[lo] = min(1.0, 2 * lo)
    expected[hi] = min(1.0, max(hi, 2 * lo))
    assert rows[0].p_adjusted == pytest.approx(expected[p_b])
    assert rows[1].p_adjusted == pytest.approx(expected[p_c])
    assert rows[0].mark.startswith("▲") and rows[0].p_adjusted < 0.05
    assert rows[0].mean_variant == pytest.approx(np.mean(b_up))
    assert rows[0].n_users == len(USERS)


def test_family_all_corrects_over_metrics_too_and_ttest_can_drive_the_marks():
    up = [v + 0.02 + 0.01 * (i % 3) for i, v in enumerate(BASE)]
    values_a = {"recall@20": BASE, "ndcg@20": BASE}
    values_b = {"recall@20": up, "ndcg@20": BASE[::-1]}
    groups = {"A": [record("A", 1, USERS, values_a)], "B": [record("B", 1, USERS, values_b)]}
    per_metric = compare_to_baseline(
        groups, "A", ["recall@20", "ndcg@20"], SignificanceConfig(family="per_metric")
    )
    everything = compare_to_baseline(
        groups, "A", ["recall@20", "ndcg@20"], SignificanceConfig(family="all")
    )
    # one comparison per metric: per-metric families leave p unchanged; "all" is Holm over both
    for row in per_metric:
        assert row.p_adjusted == pytest.approx(row.p_value)
    np.testing.assert_allclose(
        [r.p_adjusted for r in everything], holm_adjust([r.p_value for r in everything])
    )
    ttest = compare_to_baseline(groups, "A", ["recall@20"], SignificanceConfig(test="ttest"))
    assert ttest[0].p_value == pytest.approx(stats.ttest_rel(np.array(up), np.array(BASE)).pvalue)


def test_metrics_without_per_user_values_are_not_tested():
    groups = {
        "A": [record("A", 1, USERS, {"recall@20": BASE})],
        "B": [record("B", 1, USERS, {"recall@20": BASE})],
    }
    rows = compare_to_baseline(groups, "A", ["recall@20", "coverage@20"])
    assert [r.metric for r in rows] == ["recall@20"]
    assert rows[0].p_value == 1.0 and rows[0].mark == ""  # identical vectors


def test_marks_and_summaries():
    assert significance_marker(0.3, 0.2, 0.004, 0.05) == "▲**"
    assert significance_marker(0.1, 0.2, 0.03, 0.05) == "▼*"
    assert significance_marker(0.3, 0.2, 0.06, 0.05) == ""
    assert significance_marker(0.3, 0.2, math.nan, 0.05) == ""
    s = MetricSummary.of([0.1, 0.2, 0.3])
    assert s.mean == pytest.approx(0.2) and s.std == pytest.approx(0.1)  # sample std (ddof=1)
    assert MetricSummary.of([0.25]).std == 0.0
    assert s.format(3) == "0.200 ± 0.100"
