"""Plain-text (markdown) tables of evaluation results."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from graphrec.evaluation.evaluator import EvaluationResult

__all__ = ["format_metrics_table", "markdown_table"]


def markdown_table(
    header: Sequence[str], body: Sequence[Sequence[str]], right_from: int = 1
) -> list[str]:
    """Lines of an aligned markdown table; columns from ``right_from`` on are right-aligned."""
    header = [str(h) for h in header]
    body = [[str(c) for c in row] for row in body]
    for row in body:
        if len(row) != len(header):
            raise ValueError(f"row has {len(row)} cells, header has {len(header)}")
    widths = [max([len(header[j])] + [len(row[j]) for row in body]) for j in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if j < right_from else c.rjust(w)
            for j, (c, w) in enumerate(zip(cells, widths))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 2)) if j < right_from else ("-" * (w + 1) + ":")
            for j, w in enumerate(widths)
        )
        + "|"
    )
    return [line(header), rule] + [line(row) for row in body]


def _fmt(value, metric: str) -> str:
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "nan"
    # popularity is a count (tens to thousands); the other metrics live in [0, 1]
    return f"{value:.2f}" if metric.startswith("avg_popularity") else f"{value:.4f}"


def format_metrics_table(
    results: Mapping[str, EvaluationResult | Mapping[str, float]],
    metrics: Sequence[str] | None = None,
) -> str:
    """Markdown table with one row per model and one column per metric.

    Args:
        results: ``{model name: EvaluationResult or {metric: value}}`` (row order kept).
        metrics: columns to show; default: every metric in order of first appearance.
            A model without a metric shows ``-``.
    """
    tables = {
        name: (r.metrics if isinstance(r, EvaluationResult) else dict(r))
        for name, r in results.items()
    }
    if metrics is None:
        metrics = list(dict.fromkeys(m for t in tables.values() for m in t))
    elif isinstance(metrics, str):
        metrics = [metrics]
    header = ["model", *metrics]
    body = [[name, *(_fmt(t.get(m), m) for m in metrics)] for name, t in tables.items()]
    return "\n".join(markdown_table(header, body, right_from=1))
