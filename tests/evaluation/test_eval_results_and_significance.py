"""Save/load, paired significance tests, result alignment and tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from graphrec.errors import DataFormatError
from graphrec.evaluation import (
    EvaluationResult,
    Evaluator,
    compare_results,
    format_comparison_table,
    format_metrics_table,
    paired_tests,
)


def make_result(users, values: dict[str, list[float]]) -> EvaluationResult:
    per_user = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    return EvaluationResult(
        metrics={k: float(v.mean()) for k, v in per_user.items()},
        per_user=per_user,
        users=np.asarray(users, dtype=np.int64),
        num_users=len(users),
        seconds=0.5,
    )


# ------------------------------------------------------------------ save/load
def test_save_load_round_trip(tmp_path, make_csr, make_scorer):
    res = Evaluator(ks=(1, 2), item_popularity=np.array([1, 2, 3])).evaluate(
        make_scorer([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.0, 0.0, 0.0]]),
        make_csr({0: [2], 2: [1, 0]}, (3, 3)),
    )
    res.save(tmp_path / "out" / "test.npz")
    assert (tmp_path / "out" / "test.npz").exists()
    info = json.loads((tmp_path / "out" / "test.metrics.json").read_text())
    assert info["metrics"] == res.metrics
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
    back = EvaluationResult.load(tmp_path / "out" / "test.npz")
    assert back.metrics == res.metrics
    assert back.num_users == res.num_users == 2
    assert back.seconds == res.seconds
    assert back.meta == res.meta
    np.testing.assert_array_equal(back.users, res.users)
    assert back.users.dtype == np.int64
    assert list(back.per_user) == list(res.per_user)
    for name in res.per_user:
        np.testing.assert_array_equal(back.per_user[name], res.per_user[name])
    # the suffix is optional
    res.save(tmp_path / "plain")
    assert EvaluationResult.load(tmp_path / "plain").metrics == res.metrics
    assert (tmp_path / "plain.npz").exists() and (tmp_path / "plain.metrics.json").exists()


def test_load_errors(tmp_path):
    with pytest.raises(DataFormatError, match="not found"):
        EvaluationResult.load(tmp_path / "missing.npz")
    res = make_result([0, 1], {"recall@1": [0.0, 1.0]})
    res.save(tmp_path / "r.npz")
    (tmp_path / "r.metrics.json").write_text('{"metrics": {}, "num_users": 3, "seconds": 0}')
    with pytest.raises(DataFormatError, match="num_users"):
        EvaluationResult.load(tmp_path / "r.npz")


# ------------------------------------------------------------------ paired tests
def test_paired_tests_match_scipy():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a + rng.normal(0.02, 0.1, size=200)
    out = paired_tests(a, b)
    assert out["n"] == 200
    assert out["p_wilcoxon"] == pytest.approx(stats.wilcoxon(b, a).pvalue, rel=1e-12)
    assert out["p_ttest"] == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-12)
    assert out["mean_diff"] == pytest.approx(np.mean(b - a))
    assert out["rel_improvement"] == pytest.approx((b.mean() - a.mean()) / a.mean())
    # symmetric p-values, mirrored direction
    rev = paired_tests(b, a)
    assert rev["p_wilcoxon"] == pytest.approx(out["p_wilcoxon"])
    assert rev["mean_diff"] == pytest.approx(-out["mean_diff"])


def test_paired_tests_small_hand_case():
    # differences b - a = [0.1, 0.2, 0.3, 0.4, 0.5], all positive: exact Wilcoxon two-sided
    # p = 2 * P(W+ = 15) = 2 / 2**5 = 0.0625; mean a = 0.3, mean b = 0.6 -> +100 %
    a = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    b = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    out = paired_tests(a, b)
    assert out["p_wilcoxon"] == pytest.approx(0.0625)
    assert out["rel_improvement"] == pytest.approx(1.0)
    assert out["mean_diff"] == pytest.approx(0.3)


def test_paired_tests_zero_difference_and_edge_cases():
    a = np.array([0.0, 0.5, 1.0, 0.0])
    out = paired_tests(a, a.copy())
    assert out["p_wilcoxon"] == 1.0 and out["p_ttest"] == 1.0
    assert out["mean_diff"] == 0.0 and out["rel_improvement"] == 0.0
    zeros = paired_tests(np.zeros(3), np.zeros(3))
    assert zeros["p_wilcoxon"] == 1.0 and math.isnan(zeros["rel_improvement"])
    single = paired_tests(np.array([0.0]), np.array([1.0]))
    assert math.isnan(single["p_ttest"])
    with pytest.raises(ValueError):
        paired_tests(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        paired_tests(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError):
        paired_tests(np.array([np.nan]), np.array([1.0]))


# ------------------------------------------------------------------ alignment
def test_compare_results_aligns_users():
    rng = np.random.default_rng(1)
    users_a = rng.permutation(np.arange(0, 40))
    users_b = rng.permutation(np.arange(20, 60))
    value = lambda u: (u % 7) / 7.0  # noqa: E731 - per-user value of A, a function of the user id
    a = make_result(users_a, {"recall@10": [value(u) for u in users_a], "ndcg@10": [0.1] * 40})
    b = make_result(
        users_b, {"recall@10": [value(u) + 0.01 * (u % 3) for u in users_b], "ndcg@10": [0.2] * 40}
    )
    rows = compare_results(a, b)
    assert [r["metric"] for r in rows] == ["recall@10", "ndcg@10"]
    common = np.arange(20, 40)
    x = np.array([value(u) for u in common])
    y = x + 0.01 * (common % 3)
    r = rows[0]
    assert r["n"] == 20 and r["n_only_a"] == 20 and r["n_only_b"] == 20
    assert r["mean_a"] == pytest.approx(x.mean())
    assert r["mean_b"] == pytest.approx(y.mean())
    assert r["p_wilcoxon"] == pytest.approx(stats.wilcoxon(y, x).pvalue)
    assert r["p_ttest"] == pytest.approx(stats.ttest_rel(y, x).pvalue)
    assert compare_results(a, b, metrics=["ndcg@10"])[0]["mean_diff"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="per-user"):
        compare_results(a, b, metrics=["mrr@10"])
    disjoint = make_result([100, 101], {"recall@10": [0.0, 1.0]})
    with pytest.raises(ValueError, match="in common"):
        compare_results(a, disjoint)


# ------------------------------------------------------------------ tables
def test_format_comparison_table():
    rows = [
        {
            "metric": "recall@20",
            "mean_a": 0.1,
            "mean_b": 0.12,
            "rel_improvement": 0.2,
            "p_wilcoxon": 0.001,
            "p_ttest": 0.004,
            "n": 50,
        },
        {
            "metric": "ndcg@20",
            "mean_a": 0.05,
            "mean_b": 0.05,
            "rel_improvement": 0.0,
            "p_wilcoxon": 1.0,
            "p_ttest": 1.0,
            "n": 50,
        },
        {
            "metric": "mrr@20",
            "mean_a": 0.0,
            "mean_b": 0.01,
            "rel_improvement": float("nan"),
            "p_wilcoxon": 0.03,
            "p_ttest": float("nan"),
            "n": 50,
        },
    ]
    text = format_comparison_table(rows, "LightGCN", "NGCF")
    lines = text.splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "metric",
        "LightGCN",
        "NGCF",
        "Δ%",
        "p Wilcoxon",
        "p t-test",
        "sig",
    ]
    assert lines[1].startswith("|---") and lines[1].endswith(":|")
    assert "| recall@20" in text and "+20.00%" in text and "**" in lines[2]
    assert lines[3].rstrip().endswith("|     |")  # no mark for p = 1
    assert "n/a" in lines[4] and lines[4].rstrip().endswith("|   * |")
    assert "n = 50" in text


def test_format_metrics_table():
    res = make_result([0, 1], {"recall@20": [0.25, 0.75]})
    text = format_metrics_table({"MF": res, "Pop": {"recall@20": 0.1, "coverage@20": 0.05}})
    lines = text.splitlines()
    assert lines[0].replace(" ", "") == "|model|recall@20|coverage@20|"
    assert lines[1].startswith("|--")
    assert lines[2].replace(" ", "") == "|MF|0.5000|-|"
    assert lines[3].replace(" ", "") == "|Pop|0.1000|0.0500|"
    pop = format_metrics_table({"MF": {"avg_popularity@20": 1234.567}})
    assert pop.splitlines()[2].replace(" ", "") == "|MF|1234.57|"
    only = format_metrics_table({"MF": res}, metrics=["recall@20"])
    assert only.splitlines()[2].replace(" ", "") == "|MF|0.5000|"
