"""The end-to-end job: catalogue text -> KG -> augmentation -> GNN (+ alignment) -> comparison table.

:func:`run_pipeline` builds one :class:`~graphrec.experiment.Experiment` and loads its split
once, runs the LLM stages (:mod:`graphrec.pipeline.stages`, each through its own CLI,
resumable and cached) on that split, sets each stage's typed output
(:class:`KGStageOutput`, :class:`AugmentationStageOutput`) on the variant keys that consume
it (``inject`` in the pipeline file), runs the experiment, and hands its result and the
loaded split to the report, which reads neither again.

The pieces stay independent: the ``kg`` package only sees catalogue text, the
alignment wrapper is just another registered model name in a variant (found through
the ``graphrec.models`` entry points), and every variant is an ordinary run config
that ``python train.py`` can train alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError
from graphrec.experiment import Experiment, ExperimentResult, load_experiment_config
from graphrec.models import model_class
from graphrec.optional import KG_STAGE_MODULES, require
from graphrec.pipeline.config import PipelineConfig, load_pipeline_config
from graphrec.pipeline.stages import (
    AugmentationStageOutput,
    KGStageOutput,
    run_augmentation_stage,
    run_kg_stage,
)
from graphrec.reporting import collect_inputs, save_report

log = logging.getLogger(__name__)

__all__ = [
    "AugmentationStageOutput",
    "KGStageOutput",
    "PipelineConfig",
    "PipelineResult",
    "build_experiment",
    "load_pipeline_config",
    "run_pipeline",
]


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns."""

    experiment: Experiment
    result: ExperimentResult
    kg: KGStageOutput | None
    augmentation: AugmentationStageOutput | None
    report: Path | None

    @property
    def kg_export(self) -> Path | None:
        """The KG stage's export folder (what ``model.kg`` of the consuming variants reads)."""
        return None if self.kg is None else self.kg.export

    @property
    def augmentation_edges(self) -> Path | None:
        """The augmentation stage's edge file (what ``train.augmentation.path`` reads)."""
        return None if self.augmentation is None else self.augmentation.edges


def build_experiment(
    config: PipelineConfig,
    run_overrides: Sequence[str] = (),
    experiment_overrides: Sequence[str] = (),
    data: InteractionData | None = None,
) -> Experiment:
    """The pipeline's experiment, with its runs under the pipeline's folder (stage outputs not set yet)."""
    exp_config = load_experiment_config(
        config.experiment_file, [f"out_dir={config.directory}", *experiment_overrides]
    )
    return Experiment(exp_config, run_overrides, data=data)


def inject(
    experiment: Experiment,
    keys: Sequence[str],
    path: Path,
) -> None:
    """Set the variant ``keys`` (``inject.<stage>`` of the pipeline file) to a stage's output path."""
    if keys:
        experiment.set_variant_values({key: str(path.resolve()) for key in keys})


def _kg_stage(config: PipelineConfig, experiment: Experiment, quiet: bool) -> KGStageOutput | None:
    if not config.kg.enabled:
        return None
    output = run_kg_stage(
        config.kg,
        experiment.load_data(),
        config.directory / "kg",
        config.resolve(config.kg.seed),
        quiet,
        cache=config.resolve(config.kg.cache),
    )
    inject(experiment, config.inject.kg, output.export)
    return output


def _augmentation_stage(
    config: PipelineConfig, experiment: Experiment, quiet: bool
) -> AugmentationStageOutput | None:
    """The configured edge file, or one generated from the base variant's first-seed run (trained
    first, with the KG stage's output already set)."""
    if not config.augmentation.enabled:
        return None
    edges = config.resolve(config.augmentation.edges)
    base_run = None
    if edges is None:
        base = config.augmentation.base_variant
        if base not in experiment.run_configs:
            raise ConfigError(
                f"augmentation.base_variant: {base!r} is not a variant of {config.experiment}"
            )
        experiment.run(variants=[base], quiet=quiet)
        base_run = next(iter(experiment.run_configs[base].values())).run_dir
    output = run_augmentation_stage(
        config.augmentation, base_run, config.directory / "augmentation", edges, quiet
    )
    inject(experiment, config.inject.augmentation, output.edges)
    return output


def _report(config: PipelineConfig, experiment: Experiment, result: ExperimentResult) -> Path:
    """The HTML report of the result just computed, on the split already loaded."""
    inputs = collect_inputs((), experiments=[result])
    inputs.add_data(experiment.data_config, experiment.load_data())
    return save_report(inputs, config.directory / "report.html")


def _require_stage_dependencies(config: PipelineConfig, experiment: Experiment) -> None:
    """Fail before any work when an extra the stages or the variants' models need is missing."""
    if config.kg.enabled:
        for module in KG_STAGE_MODULES:
            require(module, "the pipeline's KG stage")
    names = {run.model.name for runs in experiment.run_configs.values() for run in runs.values()}
    for name in sorted(names):
        for module in model_class(name).requires:
            require(module, f"model {name} of the comparison")


def run_pipeline(
    config: PipelineConfig,
    run_overrides: Sequence[str] = (),
    experiment_overrides: Sequence[str] = (),
    quiet: bool = False,
    rerun: Sequence[str] = (),
) -> PipelineResult:
    """Run the stages, then the experiment; finished stages and runs are reused, so a rerun resumes.

    ``rerun``: experiment variants whose runs are deleted and trained again (needed when a
    variant's settings changed since its runs were made)."""
    if config.report:
        require("matplotlib", "the pipeline's HTML report (report: true)")
    config.directory.mkdir(parents=True, exist_ok=True)
    # One experiment and one loaded split for every step: the stages work on the split the
    # variants train on, and the report analyses the runs on it.
    experiment = build_experiment(config, run_overrides, experiment_overrides)
    _require_stage_dependencies(config, experiment)
    kg = _kg_stage(config, experiment, quiet)
    augmentation = _augmentation_stage(config, experiment, quiet)
    result = experiment.run(quiet=quiet, rerun=rerun)
    report = _report(config, experiment, result) if config.report else None
    return PipelineResult(experiment, result, kg, augmentation, report)
