"""The end-to-end job: catalogue text -> KG -> augmentation -> GNN (+ alignment) -> comparison table.

:func:`run_pipeline` runs the LLM stages (:mod:`graphrec.pipeline.stages`, each
through its own CLI, resumable and cached), then an :class:`~graphrec.experiment.Experiment`
whose variants consume the stages' outputs (``inject`` in the pipeline file), and
returns the experiment's result (table with paired significance against the baseline).

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

from graphrec.experiment import Experiment, ExperimentResult, load_experiment_config
from graphrec.optional import require
from graphrec.pipeline.config import PipelineConfig, load_pipeline_config
from graphrec.pipeline.stages import run_augmentation_stage, run_kg_stage

log = logging.getLogger(__name__)

__all__ = ["PipelineConfig", "PipelineResult", "load_pipeline_config", "run_pipeline"]


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns."""

    experiment: Experiment
    result: ExperimentResult
    kg_export: Path | None
    augmentation_edges: Path | None
    report: Path | None


def _experiment(
    config: PipelineConfig,
    outputs: dict[str, Path],
    run_overrides: Sequence[str],
    experiment_overrides: Sequence[str],
) -> Experiment:
    injected = [
        f"{key}={path.resolve()}"
        for stage, path in outputs.items()
        for key in getattr(config.inject, stage)
    ]
    exp_config = load_experiment_config(
        config.resolve(config.experiment),
        [f"out_dir={config.directory}", *injected, *experiment_overrides],
    )
    return Experiment(exp_config, run_overrides)


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
    from graphrec.training import load_data

    if config.report:
        require("matplotlib", "the pipeline's HTML report (report: true)")
    directory = config.directory
    directory.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Path] = {}
    # The experiment without stage outputs fixes the split every stage works on.
    probe = _experiment(config, {}, run_overrides, experiment_overrides)
    first_config = next(iter(next(iter(probe.run_configs.values())).values()))
    data = load_data(first_config.data)

    if config.kg.enabled:
        outputs["kg"] = run_kg_stage(
            config.kg,
            data,
            directory / "kg",
            config.resolve(config.kg.seed),
            quiet,
            cache=config.resolve(config.kg.cache),
        )
    if config.augmentation.enabled:
        edges = config.resolve(config.augmentation.edges)
        base_run = None
        if edges is None:
            base = config.augmentation.base_variant
            staged = _experiment(config, outputs, run_overrides, experiment_overrides)
            if base not in staged.run_configs:
                raise ValueError(
                    f"augmentation.base_variant: {base!r} is not a variant of {config.experiment}"
                )
            staged.run(variants=[base], quiet=quiet)
            base_run = next(iter(staged.run_configs[base].values())).run_dir
        outputs["augmentation"] = run_augmentation_stage(
            config.augmentation, base_run, directory / "augmentation", edges, quiet
        )

    experiment = _experiment(config, outputs, run_overrides, experiment_overrides)
    result = experiment.run(quiet=quiet, rerun=rerun)
    report = None
    if config.report:
        from graphrec.experiment.report import write_report

        report = write_report([experiment.directory], directory / "report.html")
    return PipelineResult(
        experiment, result, outputs.get("kg"), outputs.get("augmentation"), report
    )
