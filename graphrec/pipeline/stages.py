"""The pipeline's LLM stages, each run through its own command line.

Each stage runs as a subprocess of its package's CLI (``python -m kg build``,
``python -m graphrec.augmentation generate``), exactly as a user would run it: the
stage keeps its own journal, cache and resume logic, and a crash of the LLM work
leaves nothing half-written in the pipeline's folder.  Re-running a finished stage
is cheap (every item is in the journal, so the LLM is called 0 times).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError, TrainingError
from graphrec.io import atomic_write_text
from graphrec.pipeline.config import AugmentationStageConfig, KGStageConfig

log = logging.getLogger(__name__)

#: Where `kg build` writes what graphrec reads (`kg_arrays.npz` + id maps), inside its output folder.
KG_EXPORT_FOLDER = "graphrec"


def _run(command: Sequence[str], stage: str, log_path: Path) -> None:
    log.info("%s stage: %s", stage, " ".join(command))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as stream:
        # stderr stays on the terminal (progress bars); stdout (tables, summaries) goes to the log too
        process = subprocess.run(list(command), stdout=subprocess.PIPE, text=True)
        stream.write(process.stdout)
    if process.stdout.strip():
        print(process.stdout, end="" if process.stdout.endswith("\n") else "\n")
    if process.returncode != 0:
        raise TrainingError(
            f"{stage} stage failed (exit code {process.returncode}); its command was: "
            f"{' '.join(command)} — run it again to resume (log: {log_path})"
        )


def _llm_options(config: KGStageConfig | AugmentationStageConfig, quiet: bool) -> list[str]:
    """The command-line options both stages' CLIs share: model, endpoint, quiet, then the user's extras."""
    options = []
    if config.model:
        options += ["--model", config.model]
    if config.base_url:
        options += ["--base-url", config.base_url]
    if quiet:
        options.append("--quiet")
    return options + list(config.args)


def seed_folder(seed: Path, target: Path) -> int:
    """Copy the files of a finished build ``seed`` that ``target`` lacks; returns how many were copied.

    Files already in ``target`` are never overwritten: a partly run stage keeps its own
    journal, and the stage's resume logic decides what is left to do.
    """
    if not seed.is_dir():
        raise ConfigError(f"kg.seed: {seed} is not a folder")
    copied = 0
    for source in sorted(p for p in seed.rglob("*") if p.is_file()):
        destination = target / source.relative_to(seed)
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        copied += 1
    return copied


def stage_items(data: InteractionData, max_items: int) -> list[str]:
    """Raw ids of the training items to extract from: all, or the ``max_items`` most interacted-with."""
    if max_items <= 0 or max_items >= data.n_items:
        return [str(i) for i in data.item_ids.tolist()]
    # stable sort: ties keep the dataset's item order, so the selection is deterministic
    order = np.argsort(-data.item_popularity(), kind="stable")[:max_items]
    return [str(data.item_ids[i]) for i in order]


def run_kg_stage(
    config: KGStageConfig,
    data: InteractionData,
    out: Path,
    seed: Path | None,
    quiet: bool,
    cache: Path | None = None,
) -> Path:
    """Extract a KG from the catalogue text of ``data``'s items; returns the export folder graphrec reads.

    ``seed``: a build folder copied in first; ``cache``: a `kg cache-export` file imported
    into the stage's response cache first (both only ever add what the stage lacks)."""
    out.mkdir(parents=True, exist_ok=True)
    if seed is not None:
        copied = seed_folder(seed, out)
        log.info("kg stage: %d file(s) copied from %s", copied, seed)
    if cache is not None:
        if not cache.is_file():
            raise ConfigError(f"kg.cache: {cache} does not exist")
        _run(
            [sys.executable, "-m", "kg", "cache-import", str(cache), "--cache", str(out)],
            "kg",
            out / "pipeline-stage.log",
        )
    items_file = out / "item_ids.txt"
    atomic_write_text(
        items_file, "".join(f"{item}\n" for item in stage_items(data, config.max_items))
    )
    command = [
        sys.executable,
        "-m",
        "kg",
        "build",
        "--dataset",
        data.name,
        "--schema",
        config.schema,
        "--backend",
        config.backend,
        "--out",
        str(out),
        "--item-ids-file",
        str(items_file),
    ]
    _run(command + _llm_options(config, quiet), "kg", out / "pipeline-stage.log")
    export = out / KG_EXPORT_FOLDER
    if not (export / "kg_arrays.npz").is_file():
        raise TrainingError(f"kg stage: {export / 'kg_arrays.npz'} was not written")
    return export


def run_augmentation_stage(
    config: AugmentationStageConfig,
    base_run: Path | None,
    out: Path,
    edges: Path | None,
    quiet: bool,
) -> Path:
    """Return a replayable edge file: ``edges`` as given, or one generated from ``base_run``'s top-k."""
    if edges is not None:
        if not edges.is_file():
            raise ConfigError(f"augmentation.edges: {edges} does not exist")
        return edges
    if base_run is None:
        raise ConfigError("augmentation: no edge file given and no base run to generate one from")
    target = out / "edges.jsonl"
    command = [
        sys.executable,
        "-m",
        "graphrec.augmentation",
        "generate",
        "--run",
        str(base_run),
        "--out",
        str(target),
        "--backend",
        config.backend,
        "--users",
        str(config.users),
    ]
    _run(command + _llm_options(config, quiet), "augmentation", out / "pipeline-stage.log")
    if not target.is_file():
        raise TrainingError(f"augmentation stage: {target} was not written")
    return target
