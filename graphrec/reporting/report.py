"""``evaluate.py report RUNS... --out report.html``: one self-contained HTML report.

Inputs (each path is recognised by what it holds, :mod:`graphrec.reporting.inputs`):

* an **experiment directory** (``experiment.json``): its variants become the
  compared groups, with their labels, baseline and significance settings;
* a **training run** (``config.yaml`` + ``results.json``), or a directory of runs:
  runs whose configs differ only in the seed form one group (mean ± std);
* a **search directory** (``trials.json``): search history and best trials;
* a **KG build directory** (``stats.json`` from ``python -m kg build``): entities
  per type, relations, rejection reasons; extraction quality from the
  ``evaluation.json`` beside it (``python -m kg evaluate --json``) or ``--kg-eval``.

A job that has just run an experiment (the pipeline) hands over its result and its loaded
split instead (:func:`collect_inputs` ``experiments=``, :meth:`ReportInputs.add_data`), then
calls :func:`save_report`.

Sections (:mod:`graphrec.reporting.sections`): comparison table with significance marks,
training curves, metric@K curves, long tail (recall and exposure per item-popularity
bucket), cold-start / sparse users (plus any extra evaluation such as
``per_user/cold_start.npz``), explanations (top recommendations of the best run for a few
sampled users, with the reasons of :mod:`graphrec.inference.explain` and KG paths with
evidence; :mod:`graphrec.reporting.explanations`), KG statistics and quality, noise
robustness (``noise_robustness.json`` in an experiment or run directory, or ``--noise
FILE``), search, and the runs with their configs.  Sections without data are left out.

Noise-robustness file format (written by whatever runs the noise experiment)::

    {"metric": "recall@20", "levels": [0.0, 0.1, 0.2],
     "results": {"LightGCN": [0.274, 0.262, 0.241], "MF-BPR": [...]},
     "std": {"LightGCN": [0.003, 0.004, 0.002]}}          # std optional

or ``"results": [{"variant": "LightGCN", "noise": 0.1, "value": 0.262}, ...]``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphrec import __version__
from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError, DataFormatError
from graphrec.experiment.compare import Comparison, compare_to_baseline
from graphrec.io import atomic_write_text
from graphrec.reporting import html as H
from graphrec.reporting import plots
from graphrec.reporting.analysis import AnalysisSettings, analyze_run
from graphrec.reporting.explanations import explanations_section
from graphrec.reporting.inputs import ReportInputs, collect_inputs, data_key
from graphrec.reporting.sections import (
    cold_start_section,
    comparison_section,
    kg_section,
    long_tail_section,
    metric_at_k_section,
    noise_section,
    runs_section,
    search_section,
    training_section,
)
from graphrec.training import load_data

__all__ = ["ReportInputs", "build_report", "collect_inputs", "save_report", "write_report"]

log = logging.getLogger(__name__)

#: dataset statistics shown under the comparison table, in this order, when the split has them
DATASET_FACTS = (
    "users",
    "items",
    "train_interactions",
    "valid_interactions",
    "test_interactions",
    "density",
    "kg_triples",
)


def _same_split(inputs: ReportInputs) -> bool:
    prints = {r.results.get("data_fingerprint") for rs in inputs.groups.values() for r in rs}
    return len(prints) <= 1


def _comparisons(inputs: ReportInputs, warnings: list[str]) -> list[Comparison]:
    """Paired tests of every group against the baseline (none, with a warning, across splits)."""
    if len(inputs.groups) < 2 or inputs.baseline is None:
        return []
    if not _same_split(inputs):
        warnings.append(
            "the runs were trained on different data (dataset or split): no significance tests"
        )
        return []
    try:
        return compare_to_baseline(
            inputs.groups, inputs.baseline, inputs.metrics, inputs.significance
        )
    except (ValueError, DataFormatError) as err:
        warnings.append(f"no significance tests: {err}")
        return []


def _analyses(
    inputs: ReportInputs, settings: AnalysisSettings, warnings: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any] | None]:
    """``(analyses per group, statistics of the first split)``; each split is loaded once, and not at
    all when it was handed over (:meth:`ReportInputs.add_data`)."""
    analyses: dict[str, list[dict[str, Any]]] = {}
    loaded: dict[str, InteractionData] = {}
    for label, records in inputs.groups.items():
        analyses[label] = []
        for r in records:
            key = data_key(r.config.data)
            try:
                if key not in loaded:
                    handed = inputs.datasets.get(key)
                    loaded[key] = load_data(r.config.data) if handed is None else handed
                result = analyze_run(r.run_dir, loaded[key], settings)
            except Exception as err:  # a broken run must not sink the whole report
                warnings.append(f"{r.run_dir}: analysis failed ({type(err).__name__}: {err})")
                continue
            if result is None:
                warnings.append(
                    f"{r.run_dir}: no checkpoint, so no metric@K / long-tail / sparse-user analysis"
                )
            else:
                analyses[label].append(result)
    stats = next(iter(loaded.values())).statistics() if loaded else None
    return analyses, stats


def _overview(
    inputs: ReportInputs,
    warnings: list[str],
    comparisons: list[Comparison],
    dataset_stats: dict[str, Any] | None,
) -> str:
    """The first section: warnings, what was compared, the comparison table, dataset statistics."""
    overview = "".join(f'<div class="warn">{H.esc(w)}</div>' for w in warnings)
    if inputs.groups:
        first = next(iter(inputs.groups.values()))[0]
        overview += (
            f"<p>{len(inputs.groups)} models, {sum(len(r) for r in inputs.groups.values())} runs on "
            f"<b>{H.esc(first.config.data.dataset)}</b>; models selected on validation "
            f"<code>{H.esc(first.config.train.select_metric)}</code>, metrics from full ranking over all items "
            "with training items masked.</p>"
        )
        overview += comparison_section(inputs, comparisons)
    if dataset_stats:
        keys = [k for k in DATASET_FACTS if k in dataset_stats]
        overview += H.details(
            "dataset statistics", H.table(keys, [[dataset_stats[k] for k in keys]])
        )
    return overview


def _run_sections(
    inputs: ReportInputs,
    analyses: dict[str, list[dict[str, Any]]],
    explanations: str,
    palette: dict[str, str],
) -> list[tuple[str, str, str]]:
    """The sections about the compared runs, in page order, those with something to show."""
    sections = [
        ("training", "Training curves", training_section(inputs, palette)),
        ("metric-at-k", "Metric@K", metric_at_k_section(analyses, inputs, palette)),
        ("long-tail", "Long tail", long_tail_section(analyses, palette)),
        (
            "cold-start",
            "Cold start and sparse users",
            cold_start_section(analyses, inputs, palette),
        ),
        ("explanations", "Explanations", explanations),
    ]
    return [section for section in sections if section[2]]


def build_report(
    inputs: ReportInputs,
    title: str | None = None,
    analysis: bool = True,
    settings: AnalysisSettings | None = None,
) -> str:
    """The HTML document of ``inputs`` (``analysis=False`` skips the checkpoint-based sections)."""
    started = time.perf_counter()
    palette = plots.colors(list(inputs.groups))
    warnings = list(inputs.warnings)
    comparisons = _comparisons(inputs, warnings)
    analyses: dict[str, list[dict[str, Any]]] = {}
    dataset_stats = None
    explanations = ""
    if analysis and inputs.groups:
        settings = settings or AnalysisSettings(k=_analysis_k(inputs))
        analyses, dataset_stats = _analyses(inputs, settings, warnings)
        if inputs.metrics:
            explanations, failed = explanations_section(inputs.groups, inputs.metrics[0])
            warnings += failed

    sections: list[tuple[str, str, str]] = []
    overview = _overview(inputs, warnings, comparisons, dataset_stats)
    if overview:
        sections.append(("comparison", "Comparison", overview))
    if inputs.groups:
        sections += _run_sections(inputs, analyses, explanations, palette)
    if inputs.kg_dirs:
        sections.append(("kg", "Knowledge graph", kg_section(inputs)))
    if inputs.noise:
        sections.append(("noise", "Noise robustness", noise_section(inputs, palette)))
    if inputs.searches:
        sections.append(("search", "Hyper-parameter search", search_section(inputs)))
    if inputs.groups:
        sections.append(("runs", "Runs and configs", runs_section(inputs)))
    if not sections:
        raise ConfigError(
            "nothing to report: no finished run, search, KG build or noise table among the inputs"
        )
    title = title or (
        "Experiment " + ", ".join(inputs.experiments) if inputs.experiments else "graphrec report"
    )
    subtitle = (
        f"graphrec {__version__} · generated {time.strftime('%Y-%m-%d %H:%M')} · "
        f"built in {time.perf_counter() - started:.1f} s"
    )
    return H.page(title, subtitle, sections)


def _analysis_k(inputs: ReportInputs) -> int:
    metric = next(iter(inputs.groups.values()))[0].config.train.select_metric
    _, _, k = metric.partition("@")
    return int(k) if k.isdigit() else 20


def save_report(
    inputs: ReportInputs, out: str | Path, title: str | None = None, analysis: bool = True
) -> Path:
    """Write the HTML report of ``inputs`` to ``out`` (atomically, readable by others); returns ``out``."""
    document = build_report(inputs, title=title, analysis=analysis)
    out = Path(out)
    atomic_write_text(out, document)
    # atomic writes create 0600 temp files; a report is meant to be shared
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)
    log.info("report written to %s (%.0f KB)", out, out.stat().st_size / 1024)
    return out


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
    return save_report(inputs, out, title=title, analysis=analysis)
