"""``evaluate.py report RUNS... --out report.html``: one self-contained HTML report.

Inputs (each path is recognised by what it holds):

* an **experiment directory** (``experiment.json``): its variants become the
  compared groups, with their labels, baseline and significance settings;
* a **training run** (``config.yaml`` + ``results.json``), or a directory of runs:
  runs whose configs differ only in the seed form one group (mean ± std);
* a **search directory** (``trials.json``): search history and best trials;
* a **KG build directory** (``stats.json`` from ``python -m kg build``): entities
  per type, relations, rejection reasons; extraction quality from the
  ``evaluation.json`` beside it (``python -m kg evaluate --json``) or ``--kg-eval``.

Sections: comparison table with significance marks, training curves, metric@K
curves, long tail (recall and exposure per item-popularity bucket), cold-start /
sparse users (plus any extra evaluation such as ``per_user/cold_start.npz``),
explanations (top recommendations of the best run for a few sampled users, with the
reasons of :mod:`graphrec.inference.explain` and KG paths with evidence;
:mod:`graphrec.experiment.explanations`), KG
statistics and quality, noise robustness (``noise_robustness.json`` in an
experiment or run directory, or ``--noise FILE``), search, and the runs with
their configs.  Sections without data are left out.

Noise-robustness file format (written by whatever runs the noise experiment)::

    {"metric": "recall@20", "levels": [0.0, 0.1, 0.2],
     "results": {"LightGCN": [0.274, 0.262, 0.241], "MF-BPR": [...]},
     "std": {"LightGCN": [0.003, 0.004, 0.002]}}          # std optional

or ``"results": [{"variant": "LightGCN", "noise": 0.1, "value": 0.262}, ...]``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.config import dump_config, to_dict
from graphrec.errors import ConfigError, DataFormatError
from graphrec.experiment import html as H
from graphrec.experiment import plots
from graphrec.experiment.analysis import AnalysisSettings, analyze_run
from graphrec.experiment.compare import (
    Comparison,
    MetricSummary,
    compare_to_baseline,
    default_metrics,
    summarize_variant,
)
from graphrec.experiment.config import NEUTRAL_KEYS, SignificanceConfig, flatten
from graphrec.experiment.explanations import explanations_section
from graphrec.experiment.runs import RunRecord, is_finished_run, load_run_record
from graphrec.io import atomic_write_text

__all__ = ["ReportInputs", "collect_inputs", "build_report", "write_report"]

log = logging.getLogger(__name__)


@dataclass
class ReportInputs:
    """Everything a report shows, gathered from the given paths."""

    groups: dict[str, list[RunRecord]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    baseline: str | None = None
    metrics: list[str] = field(default_factory=list)
    significance: SignificanceConfig = field(default_factory=SignificanceConfig)
    experiments: list[str] = field(default_factory=list)
    searches: list[Any] = field(default_factory=list)
    kg_dirs: list[Path] = field(default_factory=list)
    kg_evaluations: dict[str, dict] = field(default_factory=dict)
    noise: list[tuple[str, dict]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_group(self, label: str, records: list[RunRecord], description: str = "") -> None:
        base, n = label, 2
        while label in self.groups:
            label, n = f"{base} ({n})", n + 1
        self.groups[label] = records
        if description:
            self.descriptions[label] = description


# --------------------------------------------------------------------------- collecting
_SEED_SUFFIX = re.compile(r"[-_.]?seed[-_]?\d+$")


def _signature(record: RunRecord) -> str:
    flat = flatten(to_dict(record.config))
    keep = {k: v for k, v in flat.items() if k not in NEUTRAL_KEYS and k != "train.seed"}
    return json.dumps(keep, sort_keys=True, default=str)


def _group_label(records: list[RunRecord]) -> str:
    """The run name without its seed suffix (``lightgcn-seed2024`` -> ``lightgcn``), else the model name."""
    return _SEED_SUFFIX.sub("", records[0].run_dir.name) or records[0].config.model.name


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"invalid JSON: {err}", path=path, line=err.lineno) from err


def _is_kg_dir(path: Path) -> bool:
    return (path / "stats.json").is_file() and (
        (path / "triples.tsv").exists()
        or any(path.glob("journal.*.jsonl"))
        or "graph" in _read_json(path / "stats.json")
    )


def collect_inputs(
    paths: Sequence[str | Path],
    kg_dirs: Sequence[str | Path] = (),
    kg_eval: Sequence[str | Path] = (),
    noise_files: Sequence[str | Path] = (),
    baseline: str | None = None,
    metrics: Sequence[str] | None = None,
) -> ReportInputs:
    """Recognise each path (experiment, run, directory of runs, search, KG build) and gather its data."""
    from graphrec.experiment.experiment import load_experiment
    from graphrec.experiment.search import load_search

    inputs = ReportInputs()
    standalone: list[RunRecord] = []
    experiment_results = []

    def visit(path: Path, depth: int) -> bool:
        if (path / "experiment.json").is_file():
            experiment_results.append(load_experiment(path))
            if (path / "noise_robustness.json").is_file():
                inputs.noise.append(
                    (
                        str(path / "noise_robustness.json"),
                        _read_json(path / "noise_robustness.json"),
                    )
                )
            return True
        if (path / "trials.json").is_file() and (path / "search.json").is_file():
            inputs.searches.append(load_search(path))
            return True
        if _is_kg_dir(path):
            inputs.kg_dirs.append(path)
            return True
        if is_finished_run(path):
            standalone.append(load_run_record(path))
            if (path / "noise_robustness.json").is_file():
                inputs.noise.append(
                    (
                        str(path / "noise_robustness.json"),
                        _read_json(path / "noise_robustness.json"),
                    )
                )
            return True
        if path.is_dir() and depth < 2:
            found = False
            for child in sorted(p for p in path.iterdir() if p.is_dir()):
                found = visit(child, depth + 1) or found
            return found
        return False

    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError(f"{path}: no such file or directory")
        if not visit(path, 0):
            raise ConfigError(
                f"{path}: not a finished run, a directory of runs, an experiment, a search or a KG build directory"
            )
    for path in kg_dirs:
        path = Path(path)
        if not (path / "stats.json").is_file():
            raise ConfigError(f"{path}: not a KG build directory (stats.json is missing)")
        inputs.kg_dirs.append(path)
    for kg_path in inputs.kg_dirs:
        for name in ("evaluation.json", "quality.json", "kg_evaluation.json"):
            if (kg_path / name).is_file():
                inputs.kg_evaluations[str(kg_path)] = _read_json(kg_path / name)
                break
    for i, path in enumerate(kg_eval):
        key = str(inputs.kg_dirs[i]) if i < len(inputs.kg_dirs) else str(path)
        inputs.kg_evaluations[key] = _read_json(Path(path))
    for path in noise_files:
        inputs.noise.append((str(path), _read_json(Path(path))))

    prefix = len(experiment_results) > 1
    for exp in experiment_results:
        inputs.experiments.append(exp.name)
        for variant, records in exp.records.items():
            if records:
                label = exp.labels.get(variant, variant)
                inputs.add_group(f"{exp.name}/{label}" if prefix else label, records)
        if inputs.baseline is None and exp.records.get(exp.baseline):
            base_label = exp.labels.get(exp.baseline, exp.baseline)
            inputs.baseline = f"{exp.name}/{base_label}" if prefix else base_label
            inputs.significance = exp.significance
            if not metrics:
                inputs.metrics = list(exp.metrics)
    by_signature: dict[str, list[RunRecord]] = {}
    for record in standalone:
        by_signature.setdefault(_signature(record), []).append(record)
    for records in by_signature.values():
        records.sort(key=lambda r: r.seed)
        inputs.add_group(_group_label(records), records)

    if baseline is not None:
        if baseline not in inputs.groups:
            raise ConfigError(
                f"--baseline {baseline!r} is not a group; groups: {', '.join(inputs.groups)}"
            )
        inputs.baseline = baseline
    elif inputs.baseline is None and inputs.groups:
        inputs.baseline = next(iter(inputs.groups))
    if metrics:
        inputs.metrics = list(metrics)
    elif not inputs.metrics and inputs.groups:
        first = next(iter(inputs.groups.values()))[0]
        inputs.metrics = default_metrics(first.config.eval.ks)
    return inputs


# --------------------------------------------------------------------------- sections
def _same_split(inputs: ReportInputs) -> bool:
    prints = {r.results.get("data_fingerprint") for rs in inputs.groups.values() for r in rs}
    return len(prints) <= 1


def _comparison_section(inputs: ReportInputs, comparisons: list[Comparison]) -> str:
    sig = inputs.significance
    metrics = [
        m
        for m in inputs.metrics
        if all(m in r.metrics(sig.split) for rs in inputs.groups.values() for r in rs)
    ]
    marks = {(c.variant, c.metric): c for c in comparisons}
    header = ["model", "seeds", *metrics, "train s", "best epoch"]
    rows, classes = [], []
    for label, records in inputs.groups.items():
        summary = summarize_variant(label, label, records, metrics, sig.split)
        cells: list[Any] = [
            H.esc(label + (" (baseline)" if label == inputs.baseline else "")),
            len(records),
        ]
        for m in metrics:
            text = H.esc(summary.metrics[m].format(2 if m.startswith("avg_popularity") else 4))
            c = marks.get((label, m))
            if c is not None and c.mark:
                cls = "sig-up" if c.mark.startswith("▲") else "sig-down"
                title = f"p corrected = {c.p_adjusted:.2g} ({c.test}, {c.correction})"
                text += f' <span class="{cls}" title="{H.esc(title)}">{H.esc(c.mark)}</span>'
            cells.append(text)
        cells += [H.esc(summary.train_seconds.format(1)), H.esc(f"{summary.best_epoch.mean:.0f}")]
        rows.append(cells)
        classes.append("baseline" if label == inputs.baseline else "")
    body = H.table(
        header, rows, classes, raw_columns=range(len(header)), right=range(1, len(header))
    )
    test = "Wilcoxon signed-rank test" if sig.test == "wilcoxon" else "paired t-test"
    correction = {"holm": "Holm", "bonferroni": "Bonferroni", "none": "no"}[sig.correction]
    body += (
        f'<p class="note">Mean ± std over seeds on the {sig.split} split. ▲/▼: higher/lower than '
        f"<b>{H.esc(inputs.baseline or '')}</b> by a {test} on per-user values averaged over seeds, "
        f"{correction} correction ({sig.family.replace('_', ' ')}); * p &lt; {sig.alpha:g}, ** p &lt; {sig.alpha / 5:g}. "
        "train s = seconds of training and validation per run.</p>"
    )
    if comparisons:
        detail_rows = [
            [
                c.variant,
                c.metric,
                c.mean_baseline,
                c.mean_variant,
                "-" if not np.isfinite(c.rel_improvement) else f"{100 * c.rel_improvement:+.2f}%",
                _p(c.p_wilcoxon),
                _p(c.p_ttest),
                _p(c.p_adjusted),
                c.mark,
            ]
            for c in comparisons
        ]
        body += H.details(
            f"all {len(comparisons)} paired tests (n = {comparisons[0].n_users} users)",
            H.table(
                [
                    "model",
                    "metric",
                    "baseline",
                    "model mean",
                    "Δ%",
                    "p Wilcoxon",
                    "p t-test",
                    "p corrected",
                    "sig",
                ],
                detail_rows,
            ),
        )
    return body


def _p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "-"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.4f}"


def _training_section(inputs: ReportInputs, palette: dict[str, str]) -> str:
    histories = {
        label: [r.history for r in records if r.history] for label, records in inputs.groups.items()
    }
    histories = {k: v for k, v in histories.items() if v}
    if not histories:
        return ""
    metric = next(iter(inputs.groups.values()))[0].config.train.select_metric
    svg = plots.training_curves_figure(histories, metric, palette)
    return H.figure(
        svg,
        f"Training loss per epoch (log scale) and validation {metric} at each check; one line per seed.",
    )


def _metric_at_k_section(
    analyses: dict[str, list[dict]], inputs: ReportInputs, palette: dict[str, str]
) -> str:
    curves = {label: [a["curve"] for a in items] for label, items in analyses.items() if items}
    if curves:
        split = next(iter(analyses.values()))[0]["split"]
        svg = plots.metric_at_k_figure(curves, palette, ("recall", "ndcg", "hitrate"))
        return H.figure(
            svg,
            f"Recall, NDCG and HitRate at K on the {split} split (full ranking, training items masked); "
            "mean over seeds, band = ±1 std.",
        )
    # no checkpoints: fall back to the cut-offs the runs were evaluated at
    curves = {}
    for label, records in inputs.groups.items():
        ks = sorted(records[0].config.eval.ks)
        runs = []
        for r in records:
            test = r.metrics("test")
            runs.append(
                {
                    "ks": ks,
                    **{m: [test.get(f"{m}@{k}", np.nan) for k in ks] for m in ("recall", "ndcg")},
                }
            )
        curves[label] = runs
    if not curves:
        return ""
    return H.figure(
        plots.metric_at_k_figure(curves, palette),
        "Recall and NDCG at the runs' evaluation cut-offs (test).",
    )


def _long_tail_section(analyses: dict[str, list[dict]], palette: dict[str, str]) -> str:
    analyses = {k: v for k, v in analyses.items() if v}
    if not analyses:
        return ""
    first = next(iter(analyses.values()))[0]
    buckets = first["popularity_buckets"]
    k = first["k"]
    cats = [
        f"{b['bucket']}: pop {b['popularity_min']}–{b['popularity_max']}\n({b['items']} items)"
        for b in buckets
    ]
    recall = {
        label: [
            MetricSummary.of([a["popularity_buckets"][i]["recall"] for a in items])
            for i in range(len(buckets))
        ]
        for label, items in analyses.items()
    }
    exposure = {
        label: [
            MetricSummary.of([a["popularity_buckets"][i]["exposure"] for a in items])
            for i in range(len(buckets))
        ]
        for label, items in analyses.items()
    }
    test_share = np.array([b["test_interactions"] for b in buckets], dtype=float)
    test_share = test_share / max(1.0, test_share.sum())
    out = H.figure(
        plots.grouped_bars(
            cats,
            {lbl: [s.mean for s in v] for lbl, v in recall.items()},
            {lbl: [s.std for s in v] for lbl, v in recall.items()},
            palette,
            f"recall@{k} by item-popularity bucket",
            f"recall@{k}",
            "bucket (1 = most popular)",
        ),
        f"Items sorted by training popularity and cut into {len(buckets)} buckets with equal shares of the "
        f"training interactions. Recall@{k} counts only each user's test items in the bucket "
        "(users with test items there); error bars = std over seeds.",
    )
    out += H.figure(
        plots.grouped_bars(
            cats,
            {lbl: [s.mean for s in v] for lbl, v in exposure.items()},
            {lbl: [s.std for s in v] for lbl, v in exposure.items()},
            palette,
            f"share of top-{k} recommendations per bucket",
            "share of slots",
            "bucket (1 = most popular)",
            reference=("share of test interactions", test_share),
        ),
        "Exposure: where the recommendation slots go, against where the test items are (dashed).",
    )
    out += H.table(
        ["model", *[f"bucket {b['bucket']} recall@{k}" for b in buckets]],
        [[label, *[s.format(4) for s in recall[label]]] for label in analyses],
    )
    header = ["model", *[f"bucket {b['bucket']} exposure" for b in buckets]]
    rows = [[label, *[s.format(3) for s in exposure[label]]] for label in analyses]
    info = [
        [
            b["bucket"],
            b["items"],
            f"{b['popularity_min']}–{b['popularity_max']}",
            f"{100 * b['train_share']:.1f}%",
            b["test_interactions"],
            b["users"],
        ]
        for b in buckets
    ]
    out += H.table(header, rows)
    out += H.details(
        "bucket definitions",
        H.table(
            [
                "bucket",
                "items",
                "train popularity",
                "share of train",
                "test interactions",
                "users with test items",
            ],
            info,
        ),
    )
    return out


def _cold_start_section(
    analyses: dict[str, list[dict]], inputs: ReportInputs, palette: dict[str, str]
) -> str:
    out = ""
    extra: dict[str, dict[str, list]] = {}
    for label, records in inputs.groups.items():
        for r in records:
            for name, res in r.extra_evaluations().items():
                extra.setdefault(name, {}).setdefault(label, []).append(res)
            for key in ("cold_start", "cold-start"):
                if isinstance(r.results.get(key), dict):
                    extra.setdefault(key, {}).setdefault(label, []).append(r.results[key])
    for name, by_label in extra.items():
        metrics = [
            m
            for m in inputs.metrics
            if all(
                m in (res.metrics if hasattr(res, "metrics") else res)
                for rs in by_label.values()
                for res in rs
            )
        ]
        rows = []
        for label, results in by_label.items():
            values = [(res.metrics if hasattr(res, "metrics") else res) for res in results]
            users = getattr(results[0], "num_users", "-")
            rows.append(
                [
                    label,
                    len(results),
                    users,
                    *[MetricSummary.of([v[m] for v in values]).format(4) for m in metrics],
                ]
            )
        out += f"<h3>{H.esc(name.replace('_', ' '))} evaluation</h3>" + H.table(
            ["model", "seeds", "users", *metrics], rows
        )
    analyses = {k: v for k, v in analyses.items() if v}
    if analyses:
        first = next(iter(analyses.values()))[0]
        k = first["k"]
        buckets = first["user_buckets"]
        cats = [f"{b['degree_min']}–{b['degree_max']} items\n({b['users']} users)" for b in buckets]
        vals = {
            label: [
                MetricSummary.of(
                    [a["user_buckets"][i]["recall"] for a in items if i < len(a["user_buckets"])]
                )
                for i in range(len(buckets))
            ]
            for label, items in analyses.items()
        }
        out += "<h3>Sparse users</h3>" + H.figure(
            plots.grouped_bars(
                cats,
                {lbl: [s.mean for s in v] for lbl, v in vals.items()},
                {lbl: [s.std for s in v] for lbl, v in vals.items()},
                palette,
                f"recall@{k} by user activity",
                f"recall@{k}",
                "training interactions of the user",
            ),
            "Users cut into quantile groups by their number of training interactions; the leftmost group is the "
            "closest to cold start.",
        )
        out += H.table(
            ["model", *[c.replace("\n", " ") for c in cats]],
            [[label, *[s.format(4) for s in v]] for label, v in vals.items()],
        )
    return out


def _kg_section(inputs: ReportInputs) -> str:
    out = ""
    for path in inputs.kg_dirs:
        stats = _read_json(path / "stats.json")
        graph = stats.get("graph", {})
        out += f"<h3>{H.esc(path)}</h3>"
        facts = [
            ["schema", stats.get("schema", "-")],
            ["entities (resolved)", stats.get("entities", "-")],
            ["mentions merged", stats.get("mentions_merged", "-")],
            ["nodes", graph.get("nodes", "-")],
            ["edges", graph.get("edges", "-")],
            ["weak components", graph.get("weak_components", "-")],
            ["largest component", graph.get("largest_component", "-")],
        ]
        degree = graph.get("degree") or {}
        if degree:
            facts.append(
                [
                    "degree min / median / mean / max",
                    f"{degree.get('min')} / {degree.get('median')} / {degree.get('mean')} / {degree.get('max')}",
                ]
            )
        out += H.table(["statistic", "value"], facts)
        if graph.get("nodes_per_type"):
            out += H.figure(
                plots.bar_chart(graph["nodes_per_type"], "entities per type", "entities"),
                "Entities per type (nodes of the graph).",
            )
        if graph.get("edges_per_relation"):
            out += H.figure(
                plots.bar_chart(
                    graph["edges_per_relation"],
                    "triples per relation",
                    "triples",
                    color=plots.PALETTE[2],
                ),
                "Triples per relation (edges of the graph).",
            )
        journals = stats.get("journals") or {}
        for mode, counters in journals.items():
            if mode.endswith("_rejections") or not isinstance(counters, dict):
                continue
            out += (
                f"<p class=\"muted\">{H.esc(mode)} extraction: "
                + ", ".join(f"{H.esc(k)} {H.esc(v)}" for k, v in sorted(counters.items()))
                + "</p>"
            )
        for mode, counters in journals.items():
            if mode.endswith("_rejections") and counters:
                total = sum(counters.values()) or 1
                rows = [
                    [reason, n, f"{100 * n / total:.1f}%"]
                    for reason, n in sorted(counters.items(), key=lambda kv: -kv[1])
                ]
                out += f"<h3>Rejected triples ({H.esc(mode.removesuffix('_rejections'))}) by reason</h3>"
                out += H.table(["reason", "triples", "share"], rows)
        evaluation = inputs.kg_evaluations.get(str(path))
        if evaluation:
            out += _kg_quality(evaluation)
    return out


def _kg_quality(report: dict) -> str:
    out = ""
    for source in ("text", "llm_knowledge"):
        part = report.get(source)
        if not isinstance(part, dict):
            continue
        out += f"<h3>Extraction quality against gold ({H.esc(source)})</h3>"
        facts = [
            [k.replace("_", " "), part[k]]
            for k in (
                "items",
                "triples",
                "triples_per_item",
                "grounded_precision",
                "grounded_share_before_validation",
            )
            if k in part
        ]
        if facts:
            out += H.table(["measure", "value"], facts)
        gold = part.get("gold") or {}
        if gold:
            rows = [
                [
                    rel,
                    r.get("predicted"),
                    r.get("precision"),
                    r.get("gold"),
                    r.get("recall"),
                    r.get("gold_text_supported"),
                    r.get("recall_text_supported"),
                ]
                for rel, r in gold.items()
            ]
            out += H.table(
                [
                    "relation",
                    "predicted",
                    "precision",
                    "gold facts",
                    "recall",
                    "gold in text",
                    "recall (text-supported)",
                ],
                rows,
            )
        labels = part.get("hand_labels")
        if isinstance(labels, dict):
            rows = [
                [rel, r.get("labelled"), r.get("precision")]
                for rel, r in (labels.get("per_relation") or {}).items()
            ]
            out += (
                f"<p class=\"muted\">hand-labelled sample: {H.esc(labels.get('labelled'))} triples, "
                f"precision {H.esc(H.fmt(labels.get('precision'), 3))}</p>"
            )
            if rows:
                out += H.table(["relation (not in gold)", "labelled", "precision"], rows)
    return out


def _noise_table(data: dict) -> tuple[str, list[float], dict[str, list], dict[str, list]]:
    metric = data.get("metric", "metric")
    results = data.get("results")
    if isinstance(results, list):
        levels = sorted({float(r["noise"]) for r in results})
        values: dict[str, list] = {}
        stds: dict[str, list] = {}
        for r in results:
            name = str(r.get("variant") or r.get("model"))
            values.setdefault(name, [None] * len(levels))[levels.index(float(r["noise"]))] = r.get(
                "value"
            )
            stds.setdefault(name, [None] * len(levels))[levels.index(float(r["noise"]))] = r.get(
                "std"
            )
        return metric, levels, values, stds
    if isinstance(results, dict) and "levels" in data:
        return (
            metric,
            [float(x) for x in data["levels"]],
            {str(k): list(v) for k, v in results.items()},
            dict(data.get("std") or {}),
        )
    raise DataFormatError(
        "noise robustness file needs 'levels' + a 'results' mapping, or a 'results' list",
        field="results",
    )


def _noise_section(inputs: ReportInputs, palette: dict[str, str]) -> str:
    out = ""
    for source, data in inputs.noise:
        try:
            metric, levels, values, stds = _noise_table(data)
        except DataFormatError as err:
            raise DataFormatError(str(err), path=source) from err
        pal = dict(palette)
        for name in values:
            pal.setdefault(name, plots.PALETTE[len(pal) % len(plots.PALETTE)])
        out += f"<p class=\"muted\">{H.esc(data.get('description', source))}</p>"
        rows = []
        for name, vals in values.items():
            cells = [name]
            for i, v in enumerate(vals):
                s = (stds.get(name) or [None] * len(vals))[i]
                cells.append(
                    "-" if v is None else (f"{v:.4f} ± {s:.4f}" if s is not None else f"{v:.4f}")
                )
            base = vals[0]
            last = vals[-1]
            cells.append("-" if not base or last is None else f"{100 * (last - base) / base:+.1f}%")
            rows.append(cells)
        out += H.table(["model", *[f"noise {lv:g}" for lv in levels], "change at max noise"], rows)
        out += H.figure(
            plots.noise_figure(levels, values, pal, metric), f"{metric} as the noise level grows."
        )
    return out


def _search_section(inputs: ReportInputs) -> str:
    out = ""
    for result in inputs.searches:
        counts = result.counts()
        out += f"<h3>{H.esc(result.directory)}</h3>"
        out += (
            f"<p>{sum(counts.values())} trials ({', '.join(f'{v} {k.lower()}' for k, v in sorted(counts.items()))}); "
            f"best valid {H.esc(result.metric)} = <b>{H.esc(H.fmt(result.best_value))}</b> (trial {H.esc(result.best_trial)}) "
            f"with {H.esc(json.dumps(result.best_params, sort_keys=True))}.</p>"
        )
        out += H.figure(
            plots.search_history_figure(result.trials, result.metric, result.direction),
            "Each trial's best validation value (pruned trials: last reported value) and the best so far.",
        )
        lines = result.table(15).splitlines()
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
        out += H.table(header, rows)
    return out


def _runs_section(inputs: ReportInputs) -> str:
    rows = []
    for label, records in inputs.groups.items():
        for r in records:
            valid = (r.results.get("valid") or {}).get(r.config.train.select_metric)
            rows.append(
                [
                    label,
                    r.seed,
                    str(r.run_dir),
                    r.best_epoch,
                    r.epochs_run,
                    valid,
                    f"{r.train_seconds:.1f}",
                ]
            )
    out = H.table(
        [
            "model",
            "seed",
            "run directory",
            "best epoch",
            "epochs",
            "valid select metric",
            "train s",
        ],
        rows,
    )
    for label, records in inputs.groups.items():
        text = dump_config(records[0].config)
        desc = inputs.descriptions.get(label, "")
        out += H.details(
            f"config of {label} (seed {records[0].seed})" + (f" — {desc}" if desc else ""),
            f"<pre>{H.esc(text)}</pre>",
        )
    return out


# --------------------------------------------------------------------------- main
def build_report(
    inputs: ReportInputs,
    title: str | None = None,
    analysis: bool = True,
    settings: AnalysisSettings | None = None,
) -> str:
    """The HTML document of ``inputs`` (``analysis=False`` skips the checkpoint-based sections)."""
    started = time.perf_counter()
    palette = plots.colors(list(inputs.groups))
    sections: list[tuple[str, str, str]] = []
    warnings = list(inputs.warnings)
    comparisons: list[Comparison] = []
    if inputs.groups and len(inputs.groups) > 1:
        if _same_split(inputs):
            try:
                comparisons = compare_to_baseline(
                    inputs.groups, inputs.baseline, inputs.metrics, inputs.significance
                )
            except (ValueError, DataFormatError) as err:
                warnings.append(f"no significance tests: {err}")
        else:
            warnings.append(
                "the runs were trained on different data (dataset or split): no significance tests"
            )

    analyses: dict[str, list[dict]] = {}
    dataset_stats = None
    if analysis and inputs.groups:
        settings = settings or AnalysisSettings(k=_analysis_k(inputs))
        data_cache: dict[str, Any] = {}
        from graphrec.training import load_data

        for label, records in inputs.groups.items():
            analyses[label] = []
            for r in records:
                key = json.dumps(to_dict(r.config.data), sort_keys=True)
                try:
                    if key not in data_cache:
                        data_cache[key] = load_data(r.config.data)
                    result = analyze_run(r.run_dir, data_cache[key], settings)
                except Exception as err:  # a broken run must not sink the whole report
                    warnings.append(f"{r.run_dir}: analysis failed ({type(err).__name__}: {err})")
                    continue
                if result is None:
                    warnings.append(
                        f"{r.run_dir}: no checkpoint, so no metric@K / long-tail / sparse-user analysis"
                    )
                else:
                    analyses[label].append(result)
        if data_cache:
            dataset_stats = next(iter(data_cache.values())).statistics()
    explanations = ""
    if analysis and inputs.groups and inputs.metrics:
        explanations, failed = explanations_section(inputs.groups, inputs.metrics[0])
        warnings += failed

    overview = ""
    if warnings:
        overview += "".join(f'<div class="warn">{H.esc(w)}</div>' for w in warnings)
    if inputs.groups:
        first = next(iter(inputs.groups.values()))[0]
        overview += (
            f"<p>{len(inputs.groups)} models, {sum(len(r) for r in inputs.groups.values())} runs on "
            f"<b>{H.esc(first.config.data.dataset)}</b>; models selected on validation "
            f"<code>{H.esc(first.config.train.select_metric)}</code>, metrics from full ranking over all items "
            "with training items masked.</p>"
        )
        overview += _comparison_section(inputs, comparisons)
    if dataset_stats:
        keys = [
            k
            for k in (
                "users",
                "items",
                "train_interactions",
                "valid_interactions",
                "test_interactions",
                "density",
                "kg_triples",
            )
            if k in dataset_stats
        ]
        overview += H.details(
            "dataset statistics", H.table(keys, [[dataset_stats[k] for k in keys]])
        )
    if overview:
        sections.append(("comparison", "Comparison", overview))
    if inputs.groups:
        body = _training_section(inputs, palette)
        if body:
            sections.append(("training", "Training curves", body))
        body = _metric_at_k_section(analyses, inputs, palette)
        if body:
            sections.append(("metric-at-k", "Metric@K", body))
        body = _long_tail_section(analyses, palette)
        if body:
            sections.append(("long-tail", "Long tail", body))
        body = _cold_start_section(analyses, inputs, palette)
        if body:
            sections.append(("cold-start", "Cold start and sparse users", body))
        if explanations:
            sections.append(("explanations", "Explanations", explanations))
    if inputs.kg_dirs:
        sections.append(("kg", "Knowledge graph", _kg_section(inputs)))
    if inputs.noise:
        sections.append(("noise", "Noise robustness", _noise_section(inputs, palette)))
    if inputs.searches:
        sections.append(("search", "Hyper-parameter search", _search_section(inputs)))
    if inputs.groups:
        sections.append(("runs", "Runs and configs", _runs_section(inputs)))
    if not sections:
        raise ConfigError(
            "nothing to report: no finished run, search, KG build or noise table among the inputs"
        )
    title = title or (
        "Experiment " + ", ".join(inputs.experiments) if inputs.experiments else "graphrec report"
    )
    from graphrec import __version__ as version

    subtitle = f"graphrec {version} · generated {time.strftime('%Y-%m-%d %H:%M')} · built in {time.perf_counter() - started:.1f} s"
    return H.page(title, subtitle, sections)


def _analysis_k(inputs: ReportInputs) -> int:
    metric = next(iter(inputs.groups.values()))[0].config.train.select_metric
    _, _, k = metric.partition("@")
    return int(k) if k.isdigit() else 20


def write_report(
    paths: Sequence[str | Path],
    out: str | Path,
    title: str | None = None,
    baseline: str | None = None,
    metrics: Sequence[str] | None = None,
    kg_dirs: Sequence[str | Path] = (),
    kg_eval: Sequence[str | Path] = (),
    noise_files: Sequence[str | Path] = (),
    analysis: bool = True,
) -> Path:
    """Gather ``paths`` and write the HTML report to ``out`` (atomically); returns ``out``."""
    inputs = collect_inputs(
        paths,
        kg_dirs=kg_dirs,
        kg_eval=kg_eval,
        noise_files=noise_files,
        baseline=baseline,
        metrics=metrics,
    )
    document = build_report(inputs, title=title, analysis=analysis)
    out = Path(out)
    atomic_write_text(out, document)
    # atomic writes create 0600 temp files; a report is meant to be shared
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)
    log.info("report written to %s (%.0f KB)", out, out.stat().st_size / 1024)
    return out
