"""What a report shows, gathered from paths on disk or handed over by the job that just ran.

Each path is recognised by what it holds: an experiment directory (``experiment.json``),
a finished training run or a directory of runs (runs whose configs differ only in the
seed form one group), a search directory (``trials.json``) or a KG build directory
(``stats.json``).  A job that has just run an experiment passes its
:class:`~graphrec.experiment.ExperimentResult` and its loaded split instead, so the
report neither reads the runs' records again nor reloads the dataset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphrec.config import DataConfig, to_dict
from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError, DataFormatError
from graphrec.experiment.compare import default_metrics
from graphrec.experiment.config import NEUTRAL_KEYS, SignificanceConfig, flatten
from graphrec.experiment.experiment import ExperimentResult, load_experiment
from graphrec.experiment.runs import RunRecord, is_finished_run, load_run_record
from graphrec.experiment.search import SearchResult, load_search

__all__ = ["ReportInputs", "collect_inputs", "data_key", "read_json"]

NOISE_FILE = "noise_robustness.json"


def data_key(config: DataConfig) -> str:
    """The identity of a split: runs whose ``data`` sections give the same key share one loaded split."""
    return json.dumps(to_dict(config), sort_keys=True)


@dataclass
class ReportInputs:
    """Everything a report shows, gathered from the given paths (and results handed over)."""

    groups: dict[str, list[RunRecord]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    baseline: str | None = None
    metrics: list[str] = field(default_factory=list)
    significance: SignificanceConfig = field(default_factory=SignificanceConfig)
    experiments: list[str] = field(default_factory=list)
    searches: list[SearchResult] = field(default_factory=list)
    kg_dirs: list[Path] = field(default_factory=list)
    kg_evaluations: dict[str, dict] = field(default_factory=dict)
    noise: list[tuple[str, dict]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: loaded splits by :func:`data_key`; the analyses load the others themselves
    datasets: dict[str, InteractionData] = field(default_factory=dict)

    def add_group(self, label: str, records: list[RunRecord], description: str = "") -> None:
        base, n = label, 2
        while label in self.groups:
            label, n = f"{base} ({n})", n + 1
        self.groups[label] = records
        if description:
            self.descriptions[label] = description

    def add_data(self, config: DataConfig, data: InteractionData) -> None:
        """Hand over the split ``config`` describes, so the analyses do not load it again."""
        self.datasets[data_key(config)] = data


_SEED_SUFFIX = re.compile(r"[-_.]?seed[-_]?\d+$")


def _signature(record: RunRecord) -> str:
    flat = flatten(to_dict(record.config))
    keep = {k: v for k, v in flat.items() if k not in NEUTRAL_KEYS and k != "train.seed"}
    return json.dumps(keep, sort_keys=True, default=str)


def _group_label(records: list[RunRecord]) -> str:
    """The run name without its seed suffix (``lightgcn-seed2024`` -> ``lightgcn``), else the model name."""
    return _SEED_SUFFIX.sub("", records[0].run_dir.name) or records[0].config.model.name


def read_json(path: Path) -> Any:
    """A JSON file's content; invalid JSON is a :class:`DataFormatError` naming the file and line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"invalid JSON: {err}", path=path, line=err.lineno) from err


def _is_kg_dir(path: Path) -> bool:
    return (path / "stats.json").is_file() and (
        (path / "triples.tsv").exists()
        or any(path.glob("journal.*.jsonl"))
        or "graph" in read_json(path / "stats.json")
    )


@dataclass
class _Found:
    """What walking the paths found, before runs are grouped."""

    inputs: ReportInputs
    experiments: list[ExperimentResult] = field(default_factory=list)
    standalone: list[RunRecord] = field(default_factory=list)

    def add_noise_beside(self, folder: Path) -> None:
        if (folder / NOISE_FILE).is_file():
            self.inputs.noise.append((str(folder / NOISE_FILE), read_json(folder / NOISE_FILE)))

    def visit(self, path: Path, depth: int) -> bool:
        """Recognise ``path`` (descending two levels into plain folders); ``False``: nothing found."""
        if (path / "experiment.json").is_file():
            self.experiments.append(load_experiment(path))
            self.add_noise_beside(path)
            return True
        if (path / "trials.json").is_file() and (path / "search.json").is_file():
            self.inputs.searches.append(load_search(path))
            return True
        if _is_kg_dir(path):
            self.inputs.kg_dirs.append(path)
            return True
        if is_finished_run(path):
            self.standalone.append(load_run_record(path))
            self.add_noise_beside(path)
            return True
        if path.is_dir() and depth < 2:
            found = False
            for child in sorted(p for p in path.iterdir() if p.is_dir()):
                found = self.visit(child, depth + 1) or found
            return found
        return False


def _add_kg_and_noise_files(
    inputs: ReportInputs,
    kg_dirs: Sequence[str | Path],
    kg_eval: Sequence[str | Path],
    noise_files: Sequence[str | Path],
) -> None:
    for name in kg_dirs:
        path = Path(name)
        if not (path / "stats.json").is_file():
            raise ConfigError(f"{path}: not a KG build directory (stats.json is missing)")
        inputs.kg_dirs.append(path)
    for kg_path in inputs.kg_dirs:
        for evaluation in ("evaluation.json", "quality.json", "kg_evaluation.json"):
            if (kg_path / evaluation).is_file():
                inputs.kg_evaluations[str(kg_path)] = read_json(kg_path / evaluation)
                break
    for i, name in enumerate(kg_eval):
        key = str(inputs.kg_dirs[i]) if i < len(inputs.kg_dirs) else str(name)
        inputs.kg_evaluations[key] = read_json(Path(name))
    for name in noise_files:
        inputs.noise.append((str(name), read_json(Path(name))))


def _add_groups(
    inputs: ReportInputs,
    experiments: Sequence[ExperimentResult],
    standalone: Sequence[RunRecord],
    metrics: Sequence[str] | None,
) -> None:
    """Experiments' variants (prefixed by the experiment when there are several), then standalone
    runs grouped by their seed-less config; the first experiment with a finished baseline sets
    the baseline, the significance settings and (unless given) the metrics."""
    prefix = len(experiments) > 1
    for exp in experiments:
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


def _choose_baseline_and_metrics(
    inputs: ReportInputs, baseline: str | None, metrics: Sequence[str] | None
) -> None:
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


def collect_inputs(
    paths: Sequence[str | Path],
    kg_dirs: Sequence[str | Path] = (),
    kg_eval: Sequence[str | Path] = (),
    noise_files: Sequence[str | Path] = (),
    baseline: str | None = None,
    metrics: Sequence[str] | None = None,
    experiments: Sequence[ExperimentResult] = (),
) -> ReportInputs:
    """Recognise each path (experiment, run, directory of runs, search, KG build) and gather its data.

    ``experiments``: results already in memory (the job that just ran them), shown before the
    experiments found among ``paths``; their folders' noise tables are read like a path's."""
    found = _Found(ReportInputs())
    for exp in experiments:
        found.experiments.append(exp)
        found.add_noise_beside(exp.directory)
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError(f"{path}: no such file or directory")
        if not found.visit(path, 0):
            raise ConfigError(
                f"{path}: not a finished run, a directory of runs, an experiment, a search or a KG build directory"
            )
    inputs = found.inputs
    _add_kg_and_noise_files(inputs, kg_dirs, kg_eval, noise_files)
    _add_groups(inputs, found.experiments, found.standalone, metrics)
    _choose_baseline_and_metrics(inputs, baseline, metrics)
    return inputs
