"""The Experiment API: run variants x seeds on one split, aggregate, test, tabulate.

::

    from graphrec.experiment import Experiment

    exp = Experiment.from_yaml("configs/experiments/ml-small-3x3.yaml")
    result = exp.run()                 # trains what is missing, reuses finished runs
    print(result.table())              # mean ± std, ▲/▼ marks vs the baseline, train time
    print(result.significance_table()) # Δ%, raw and Holm-corrected p-values

Directory layout (``<out_dir>/<name>/``)::

    experiment.json        the experiment as run: variants, labels, seeds, baseline, metrics
    experiment.jsonl       event log (run started / reused / finished, with timings)
    runs/<variant>/seed<seed>/   ordinary training run directories
    results.json           summaries and comparisons (written by ``run``/``save``)
    table.md               the printed tables
    tensorboard/<variant>/seed<seed>/   when ``tensorboard: true``

Adding a variant to the YAML file and running again trains only the new runs.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphrec.config import DataConfig, RunConfig, from_dict, set_nested, to_dict
from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError, DataFormatError
from graphrec.experiment.compare import (
    Comparison,
    VariantSummary,
    compare_to_baseline,
    default_metrics,
    format_experiment_table,
    format_significance_table,
    summarize_variant,
)
from graphrec.experiment.config import (
    ExperimentConfig,
    SelectionConfig,
    SignificanceConfig,
    config_differences,
    load_experiment_config,
    resolve_variants,
)
from graphrec.experiment.logs import EventLog, progress_bar, tensorboard_callback
from graphrec.experiment.runs import RunRecord, is_finished_run, load_run_record, run_or_load
from graphrec.io import atomic_write_json, atomic_write_text
from graphrec.training import load_data

__all__ = ["Experiment", "ExperimentResult", "load_experiment"]

log = logging.getLogger(__name__)

MANIFEST = "experiment.json"


@dataclass
class ExperimentResult:
    """Finished runs of an experiment with their summaries and significance tests."""

    name: str
    directory: Path
    baseline: str
    metrics: list[str]
    significance: SignificanceConfig
    labels: dict[str, str]
    records: dict[str, list[RunRecord]]
    summaries: list[VariantSummary]
    comparisons: list[Comparison]
    missing: dict[str, list[int]]

    def table(self) -> str:
        """Markdown comparison table (mean ± std over seeds, ▲/▼ marks against the baseline)."""
        text = format_experiment_table(
            self.summaries,
            self.comparisons,
            self.metrics,
            self.baseline,
            self.significance,
            baseline_label=self.labels.get(self.baseline),
        )
        if any(self.missing.values()):
            todo = "; ".join(f"{v}: seeds {s}" for v, s in self.missing.items() if s)
            text += f"\nnot finished (left out): {todo}"
        return text

    def significance_table(self) -> str:
        return format_significance_table(self.comparisons, self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "baseline": self.baseline,
            "metrics": self.metrics,
            "significance": to_dict(self.significance),
            "variants": [
                {
                    "name": s.name,
                    "label": s.label,
                    "seeds": s.seeds,
                    "metrics": {
                        m: {"mean": v.mean, "std": v.std, "values": v.values}
                        for m, v in s.metrics.items()
                    },
                    "train_seconds": {"mean": s.train_seconds.mean, "std": s.train_seconds.std},
                    "best_epoch": {"mean": s.best_epoch.mean, "std": s.best_epoch.std},
                    "runs": [str(r.run_dir) for r in self.records.get(s.name, [])],
                }
                for s in self.summaries
            ],
            "comparisons": [c.as_dict() for c in self.comparisons],
            "missing": self.missing,
        }

    def save(self) -> None:
        """Write ``results.json`` and ``table.md`` into the experiment directory (atomically)."""
        atomic_write_json(self.directory / "results.json", self.to_dict())
        atomic_write_text(
            self.directory / "table.md", self.table() + "\n\n" + self.significance_table() + "\n"
        )


class Experiment:
    """Variants x seeds on one dataset split.

    Args:
        config: an :class:`ExperimentConfig`, or a mapping with its keys (``name`` required).
        overrides: ``section.key=value`` run-config overrides applied to every variant after
            its own settings (e.g. ``train.num_threads=1``); like the trainer's
            ``--set``.  Overrides of keys that cannot change results (threads, progress,
            device) do not invalidate saved runs.
        data: the split the variants' shared ``data`` section describes, when the caller
            has it loaded already (else it is loaded once, when a run first needs it).
    """

    def __init__(
        self,
        config: ExperimentConfig | Mapping[str, Any],
        overrides: Sequence[str] = (),
        data: InteractionData | None = None,
    ) -> None:
        self.config: ExperimentConfig = (
            config if isinstance(config, ExperimentConfig) else from_dict(ExperimentConfig, config)
        )
        self.overrides = list(overrides)
        self.run_configs: dict[str, dict[int, RunConfig]] = resolve_variants(
            self.config, self.overrides
        )
        self.config.check_selection()
        self._check_selection_metric()
        self._data = data
        self._data_for = to_dict(self.data_config)

    def _check_selection_metric(self) -> None:
        """``select.metric`` must be one the runs evaluate on validation (before any training)."""
        if self.config.select is None:
            return
        evaluated = {
            f"{metric}@{k}"
            for runs in self.run_configs.values()
            for run in runs.values()
            for metric in run.eval.metrics
            for k in run.eval.ks
        }
        if self.config.select.metric not in evaluated:
            raise ConfigError(
                f"select.metric: {self.config.select.metric!r} is not among the evaluated "
                f"metrics ({', '.join(sorted(evaluated))})"
            )

    @classmethod
    def from_yaml(
        cls,
        path: str | Path,
        overrides: Sequence[str] = (),
        experiment_overrides: Sequence[str] = (),
    ) -> Experiment:
        """Load an experiment file; ``experiment_overrides`` change experiment keys (``seeds=[1,2]``)."""
        return cls(load_experiment_config(path, experiment_overrides), overrides)

    # ------------------------------------------------------------ properties
    @property
    def directory(self) -> Path:
        return self.config.directory

    @property
    def variants(self) -> list[str]:
        return list(self.run_configs)

    @property
    def metrics(self) -> list[str]:
        first = next(iter(next(iter(self.run_configs.values())).values()))
        return list(self.config.metrics) or default_metrics(first.eval.ks)

    @property
    def data_config(self) -> DataConfig:
        """The ``data`` section every variant shares (:func:`resolve_variants` checks they agree)."""
        return next(iter(next(iter(self.run_configs.values())).values())).data

    def load_data(self) -> InteractionData:
        """The split every variant trains on: the one given to the constructor, or loaded once."""
        if self._data is None:
            self._data = load_data(self.data_config)
        return self._data

    def set_variant_values(self, values: Mapping[str, object]) -> None:
        """Set variant keys (``variants.<variant>.<section>.<key>``) to values known only at run time,
        such as the pipeline's stage outputs, and resolve the run configs again.

        The loaded split is kept unless a value changed the ``data`` section."""
        variants = copy.deepcopy(self.config.variants)
        if not isinstance(variants, dict):
            raise ConfigError("variants: values can only be set on a mapping of variants")
        for key, value in values.items():
            keys = key.split(".")
            if keys[0] != "variants" or len(keys) < 4 or keys[1] not in variants:
                raise ConfigError(
                    f"{key!r} is not a key of a variant (variants.<variant>.<section>.<key>); "
                    f"variants: {', '.join(variants)}"
                )
            if variants[keys[1]] is None:
                variants[keys[1]] = {}
            set_nested(variants, keys[1:], value, where=key)
        self.config.variants = variants
        self.run_configs = resolve_variants(self.config, self.overrides)
        if to_dict(self.data_config) != self._data_for:
            self._data, self._data_for = None, to_dict(self.data_config)

    def _manifest(self) -> dict[str, Any]:
        specs = self.config.variant_specs
        return {
            "name": self.config.experiment_name,
            "description": self.config.description,
            "source": None if self.config.source is None else str(self.config.source),
            "seeds": list(self.config.seeds),
            "baseline": self.config.baseline_name,
            "metrics": self.metrics,
            "significance": to_dict(self.config.significance),
            "variants": {
                name: {
                    "label": self.config.label(name),
                    "description": specs[name].description,
                    # relative to the experiment directory, so the directory can be moved
                    "runs": {str(seed): f"runs/{name}/seed{seed}" for seed in runs},
                }
                for name, runs in self.run_configs.items()
            },
        }

    # ------------------------------------------------------------------ run
    def run(
        self,
        variants: Sequence[str] | None = None,
        rerun: Sequence[str] = (),
        data: InteractionData | None = None,
        quiet: bool = False,
        callbacks: Sequence[Callable[[dict], None]] = (),
    ) -> ExperimentResult:
        """Train every (variant, seed) run not finished yet, then summarise and save.

        Args:
            variants: only these variants (default: all); the table still shows every
                variant that has finished runs.
            rerun: variants whose runs are deleted and trained again.
            data: the loaded split (default: the one given to the constructor, else loaded
                from the variants' shared ``data`` section when a run first needs it).
            quiet: no progress bars.
            callbacks: extra trainer callbacks (called with each epoch record).
        """
        unknown = [v for v in [*(variants or []), *rerun] if v not in self.run_configs]
        if unknown:
            raise ConfigError(
                f"unknown variant(s) {', '.join(unknown)}; variants: {', '.join(self.run_configs)}"
            )
        if data is not None:
            self._data, self._data_for = data, to_dict(self.data_config)
        selected = list(variants) if variants else self.variants
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.directory / MANIFEST, self._manifest())
        events = EventLog(self.directory / "experiment.jsonl")
        todo = [(v, s) for v in selected for s in self.config.seeds]
        events.write(
            "experiment_started",
            name=self.config.experiment_name,
            variants=selected,
            seeds=list(self.config.seeds),
            overrides=self.overrides,
        )
        started = time.perf_counter()
        bar = progress_bar(
            len(todo), f"experiment {self.config.experiment_name}", quiet=quiet, unit="run"
        )
        try:
            for variant, seed in todo:
                self._run_one(
                    variant, seed, variant in rerun, quiet, callbacks, events, bar.set_postfix_str
                )
                bar.update(1)
        finally:
            bar.close()
        result = self.results()
        result.save()
        events.write(
            "experiment_finished",
            seconds=round(time.perf_counter() - started, 3),
            missing={k: v for k, v in result.missing.items() if v},
        )
        return result

    def _run_one(
        self,
        variant: str,
        seed: int,
        rerun: bool,
        quiet: bool,
        callbacks: Sequence[Callable[[dict], None]],
        events: EventLog,
        status: Callable[[str], object],
    ) -> None:
        """Reuse or train one (variant, seed) run and log it; the split is loaded only if it trains.

        ``status`` shows which run is training (the progress bar's postfix)."""
        config = self.run_configs[variant][seed]
        if quiet:
            config.train.progress = False
        t0 = time.perf_counter()
        record = None
        if not rerun and is_finished_run(config.run_dir):
            saved = load_run_record(config.run_dir, variant)
            if not config_differences(saved.config, config):
                record, reused = saved, True  # no need to even load the data
        if record is None:
            run_callbacks = list(callbacks)
            if self.config.tensorboard:
                cb = tensorboard_callback(self.directory / "tensorboard" / variant / f"seed{seed}")
                if cb is not None:
                    run_callbacks.append(cb)
            status(f"{variant} seed {seed}")
            events.write("run_started", variant=variant, seed=seed, run_dir=str(config.run_dir))
            record, reused = run_or_load(
                config,
                self.load_data(),
                run_callbacks,
                rerun=rerun,
                variant=variant,
                hint=f"rerun it with --rerun {variant} (or rename the variant)",
            )
        test = record.metrics(self.config.significance.split)
        events.write(
            "run_reused" if reused else "run_finished",
            variant=variant,
            seed=seed,
            run_dir=str(config.run_dir),
            seconds=round(time.perf_counter() - t0, 3),
            train_seconds=round(record.train_seconds, 3),
            best_epoch=record.best_epoch,
            epochs_run=record.epochs_run,
            metrics={m: test.get(m) for m in self.metrics},
        )
        if not reused:
            log.info(
                "%s seed %d: %s",
                variant,
                seed,
                "  ".join(f"{m}={test[m]:.4f}" for m in self.metrics if m in test),
            )

    def results(self) -> ExperimentResult:
        """Summaries and tests of the runs finished so far (no training)."""
        records: dict[str, list[RunRecord]] = {}
        missing: dict[str, list[int]] = {}
        for variant, runs in self.run_configs.items():
            records[variant] = []
            missing[variant] = []
            for seed, config in runs.items():
                if is_finished_run(config.run_dir):
                    records[variant].append(load_run_record(config.run_dir, variant))
                else:
                    missing[variant].append(seed)
        labels = {v: self.config.label(v) for v in self.run_configs}
        if self.config.select is not None:
            add_selection(self.config.select, records, missing, labels)
        return build_result(
            name=self.config.experiment_name,
            directory=self.directory,
            baseline=self.config.baseline_name,
            metrics=self.metrics,
            significance=self.config.significance,
            labels=labels,
            records=records,
            missing=missing,
        )


def select_on_validation(select: SelectionConfig, records: Mapping[str, list[RunRecord]]) -> str:
    """The candidate whose mean validation ``select.metric`` over its finished seeds is highest
    (ties: the earlier candidate); only validation figures are read, never test ones."""
    scores = {}
    for variant in select.among:
        values = [r.results["valid"][select.metric] for r in records.get(variant, [])]
        if values:
            scores[variant] = sum(values) / len(values)
    if not scores:
        raise ConfigError(f"select: no finished run of {', '.join(select.among)} to choose from")
    return max(scores, key=lambda v: (scores[v], -select.among.index(v)))


def add_selection(
    select: SelectionConfig,
    records: dict[str, list[RunRecord]],
    missing: dict[str, list[int]],
    labels: dict[str, str],
) -> None:
    """Add the selection's row: the chosen variant's runs under ``select.name``, labelled with
    the choice, so the table and the paired tests treat it like any variant.  Left out while
    a candidate has unfinished seeds (the choice could still change)."""
    if any(missing.get(v) for v in select.among):
        missing[select.name] = sorted({s for v in select.among for s in missing.get(v, [])})
        return
    chosen = select_on_validation(select, records)
    records[select.name] = [copy.copy(r) for r in records[chosen]]
    for record in records[select.name]:
        record.variant = select.name
    missing[select.name] = []
    labels[select.name] = f"{select.label} = {labels[chosen]}"


def build_result(
    name: str,
    directory: Path,
    baseline: str,
    metrics: Sequence[str],
    significance: SignificanceConfig,
    labels: Mapping[str, str],
    records: Mapping[str, list[RunRecord]],
    missing: Mapping[str, list[int]] | None = None,
) -> ExperimentResult:
    """Summaries and baseline comparisons of grouped runs (variants without runs are left out)."""
    groups = {v: rs for v, rs in records.items() if rs}
    summaries = [
        summarize_variant(v, labels.get(v, v), rs, metrics, significance.split)
        for v, rs in groups.items()
    ]
    comparisons = (
        compare_to_baseline(groups, baseline, metrics, significance) if baseline in groups else []
    )
    if baseline not in groups and groups:
        log.warning("baseline %s has no finished run: no significance tests", baseline)
    return ExperimentResult(
        name=name,
        directory=Path(directory),
        baseline=baseline,
        metrics=list(metrics),
        significance=significance,
        labels=dict(labels),
        records={v: list(rs) for v, rs in records.items()},
        summaries=summaries,
        comparisons=comparisons,
        missing={k: list(v) for k, v in (missing or {}).items()},
    )


def load_experiment(directory: str | Path) -> ExperimentResult:
    """Read an experiment directory written by :meth:`Experiment.run` (no config file needed)."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise DataFormatError(
            f"not an experiment directory ({MANIFEST} is missing)", path=directory
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"invalid JSON: {err}", path=path, line=err.lineno) from err
    records: dict[str, list[RunRecord]] = {}
    missing: dict[str, list[int]] = {}
    for variant, info in manifest["variants"].items():
        records[variant], missing[variant] = [], []
        for seed, run_dir in info["runs"].items():
            run_path = directory / run_dir
            if is_finished_run(run_path):
                records[variant].append(load_run_record(run_path, variant))
            else:
                missing[variant].append(int(seed))
    significance = from_dict(SignificanceConfig, manifest.get("significance") or {}, "significance")
    return build_result(
        name=manifest["name"],
        directory=directory,
        baseline=manifest["baseline"],
        metrics=manifest["metrics"],
        significance=significance,
        labels={v: i.get("label", v) for v, i in manifest["variants"].items()},
        records=records,
        missing=missing,
    )
