"""The report's sections, each rendered to an HTML fragment from a :class:`ReportInputs`.

Every function returns the body of one section ('' when it has nothing to show); the
figures come from :mod:`graphrec.reporting.plots` and the markup from
:mod:`graphrec.reporting.html`.  Nothing here trains, loads a model or reads a run again:
the analyses (``RUN/analysis/<split>.json``) are computed by :mod:`graphrec.reporting.report`
and handed in.
"""

from __future__ import annotations

import json

import numpy as np

from graphrec.config import dump_config
from graphrec.errors import DataFormatError
from graphrec.experiment.compare import Comparison, MetricSummary, summarize_variant
from graphrec.reporting import html as H
from graphrec.reporting import plots
from graphrec.reporting.inputs import ReportInputs, read_json

__all__ = [
    "cold_start_section",
    "comparison_section",
    "kg_section",
    "long_tail_section",
    "metric_at_k_section",
    "noise_section",
    "runs_section",
    "search_section",
    "training_section",
]


def comparison_section(inputs: ReportInputs, comparisons: list[Comparison]) -> str:
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
        cells: list[object] = [
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
        f"{correction} correction ({sig.family.replace('_', ' ')}); "
        f"* p &lt; {sig.alpha:g}, ** p &lt; {sig.alpha / 5:g}. "
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


def training_section(inputs: ReportInputs, palette: dict[str, str]) -> str:
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


def metric_at_k_section(
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


def _bucket_summaries(
    analyses: dict[str, list[dict]], key: str, n_buckets: int
) -> dict[str, list[MetricSummary]]:
    """Per group, the mean ± std over seeds of one popularity-bucket measure (``recall``, ``exposure``)."""
    return {
        label: [
            MetricSummary.of([a["popularity_buckets"][i][key] for a in items])
            for i in range(n_buckets)
        ]
        for label, items in analyses.items()
    }


def _bucket_bars(
    cats: list[str],
    summaries: dict[str, list[MetricSummary]],
    palette: dict[str, str],
    title: str,
    ylabel: str,
    xlabel: str,
    reference: tuple[str, np.ndarray] | None = None,
) -> str:
    """A grouped bar chart of bucket summaries: mean bars, std error bars."""
    return plots.grouped_bars(
        cats,
        {lbl: [s.mean for s in v] for lbl, v in summaries.items()},
        {lbl: [s.std for s in v] for lbl, v in summaries.items()},
        palette,
        title,
        ylabel,
        xlabel,
        reference=reference,
    )


def _bucket_definitions(buckets: list[dict]) -> str:
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
    return H.details(
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


def long_tail_section(analyses: dict[str, list[dict]], palette: dict[str, str]) -> str:
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
    recall = _bucket_summaries(analyses, "recall", len(buckets))
    exposure = _bucket_summaries(analyses, "exposure", len(buckets))
    test_share = np.array([b["test_interactions"] for b in buckets], dtype=float)
    test_share = test_share / max(1.0, test_share.sum())
    out = H.figure(
        _bucket_bars(
            cats,
            recall,
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
        _bucket_bars(
            cats,
            exposure,
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
    out += H.table(
        ["model", *[f"bucket {b['bucket']} exposure" for b in buckets]],
        [[label, *[s.format(3) for s in exposure[label]]] for label in analyses],
    )
    return out + _bucket_definitions(buckets)


def cold_start_section(
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


def kg_section(inputs: ReportInputs) -> str:
    out = ""
    for path in inputs.kg_dirs:
        stats = read_json(path / "stats.json")
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


def noise_section(inputs: ReportInputs, palette: dict[str, str]) -> str:
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


def search_section(inputs: ReportInputs) -> str:
    out = ""
    for result in inputs.searches:
        counts = result.counts()
        out += f"<h3>{H.esc(result.directory)}</h3>"
        out += (
            f"<p>{sum(counts.values())} trials ({', '.join(f'{v} {k.lower()}' for k, v in sorted(counts.items()))}); "
            f"best valid {H.esc(result.metric)} = <b>{H.esc(H.fmt(result.best_value))}</b> "
            f"(trial {H.esc(result.best_trial)}) "
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


def runs_section(inputs: ReportInputs) -> str:
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
