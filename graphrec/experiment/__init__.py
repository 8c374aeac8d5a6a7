"""Experiments people can run, compare and look at.

* :class:`Experiment` — variants (models or pipeline variants: a named run config)
  x seeds on one split; mean ± std tables with paired significance tests against a
  baseline, Holm-corrected (:mod:`graphrec.experiment.compare`).
* :func:`run_search` — grid, random and Bayesian (Optuna TPE) hyper-parameter search
  with YAML search spaces, validation-only selection, pruning and on-disk resume
  (:mod:`graphrec.experiment.search`).
The HTML report of experiments (``write_report``) is the leaf package :mod:`graphrec.reporting`:
reporting reads experiments, so it sits above this package.

Optuna and matplotlib are optional dependencies (``pip install graphrec[experiment]``),
imported only when a search runs and when a report is drawn.
"""

from graphrec.experiment.compare import (
    Comparison,
    MetricSummary,
    VariantSummary,
    compare_to_baseline,
    format_experiment_table,
    format_significance_table,
    seed_averaged,
)
from graphrec.experiment.config import (
    ExperimentConfig,
    SignificanceConfig,
    VariantConfig,
    load_experiment_config,
    resolve_variants,
    run_config_for,
)
from graphrec.experiment.experiment import Experiment, ExperimentResult, load_experiment
from graphrec.experiment.logs import EventLog, tensorboard_callback
from graphrec.experiment.runs import RunRecord, load_run_record, run_or_load
from graphrec.experiment.search import load_search_config, run_search

__all__ = [
    "Comparison",
    "EventLog",
    "Experiment",
    "ExperimentConfig",
    "ExperimentResult",
    "MetricSummary",
    "RunRecord",
    "SignificanceConfig",
    "VariantConfig",
    "VariantSummary",
    "compare_to_baseline",
    "format_experiment_table",
    "format_significance_table",
    "load_experiment",
    "load_experiment_config",
    "load_run_record",
    "load_search_config",
    "resolve_variants",
    "run_config_for",
    "run_or_load",
    "run_search",
    "seed_averaged",
    "tensorboard_callback",
]
