"""Evaluation harness: full-ranking top-K metrics, significance tests, result tables.

Protocol: every user with target items is ranked against all items; the user's
training items (and optionally validation items) are masked; among equal scores
the lower item index ranks first.  See :mod:`graphrec.evaluation.evaluator`.
"""

from graphrec.evaluation.evaluator import (
    TIE_RULE,
    EvaluationResult,
    Evaluator,
    Scorer,
    evaluate_scorer,
)
from graphrec.evaluation.metrics import (
    ACCURACY_METRICS,
    BEYOND_ACCURACY_METRICS,
    accuracy_metrics,
    average_popularity,
    coverage,
    gini_index,
)
from graphrec.evaluation.ranking import gather_csr_rows, mask_scores, restore_scores, topk_with_ties
from graphrec.evaluation.report import format_metrics_table, markdown_table
from graphrec.evaluation.significance import (
    compare_results,
    format_comparison_table,
    paired_tests,
    significance_mark,
)

__all__ = [
    "Scorer",
    "EvaluationResult",
    "Evaluator",
    "evaluate_scorer",
    "TIE_RULE",
    "ACCURACY_METRICS",
    "BEYOND_ACCURACY_METRICS",
    "accuracy_metrics",
    "coverage",
    "gini_index",
    "average_popularity",
    "gather_csr_rows",
    "mask_scores",
    "restore_scores",
    "topk_with_ties",
    "paired_tests",
    "compare_results",
    "format_comparison_table",
    "significance_mark",
    "format_metrics_table",
    "markdown_table",
]
