"""Typed configuration of the end-to-end pipeline (catalogue text -> KG -> augmentation -> models -> table).

A pipeline YAML file names an experiment file (variants x seeds, see
:mod:`graphrec.experiment.config`) and the stages that produce what some variants
consume; ``inject`` says which experiment keys receive which stage output::

    name: ml-small-pipeline
    experiment: ../experiments/pipeline-ml-small.yaml
    kg:
      cache: ../../datasets/ml-latest-small-tmdb/llm/kg-responses.jsonl.gz   # shipped replies: 0 LLM calls
    augmentation:
      edges: ../../datasets/ml-latest-small-tmdb/augmentation/edges.jsonl
    inject:
      kg: [variants.kg.model.kg]
      augmentation: [variants.full.train.augmentation.path]

Relative paths are relative to the pipeline file.  ``python -m graphrec.pipeline.config``
prints the reference of every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from graphrec.config import doc, from_dict, parse_override, set_nested
from graphrec.errors import ConfigError
from graphrec.experiment.config import read_yaml_mapping

STAGES = ("kg", "augmentation")


@dataclass
class KGStageConfig:
    """Stage 1: extract a knowledge graph from the training items' catalogue text with an LLM (`python -m kg build`)."""

    enabled: bool = doc("Run the stage (variants that consume its output need it).", True)
    schema: str = doc("Shipped schema name (`films`, `products`) or a YAML path.", "films")
    backend: Literal["embedded", "transformers", "openai"] = doc(
        "LLM backend of the `kg` package.", "embedded"
    )
    model: str | None = doc(
        "openai: model name; transformers: model folder or `.gguf` file; null for embedded.", None
    )
    base_url: str | None = doc(
        "openai: endpoint root, e.g. `http://127.0.0.1:8000/v1` (key from $OPENAI_API_KEY).", None
    )
    max_items: int = doc(
        (
            "Extract from at most this many training items, the most interacted-with first (bounds "
            "the LLM work: the embedded 135M model does well under 1 item/s on 2 cores); 0 = every "
            "training item."
        ),
        0,
    )
    seed: str | None = doc(
        (
            "A finished build folder of this same stage (journal and caches) copied in before "
            "building, so that only items it lacks reach the LLM; the shipped one makes the default "
            "pipeline call the LLM 0 times."
        ),
        None,
    )
    cache: str | None = doc(
        (
            "A response cache exported by `python -m kg cache-export` (`.jsonl.gz`), imported into "
            "the stage's cache before building (idempotent): items whose reply it holds make no LLM "
            "call. The shipped one makes the default pipeline call the LLM 0 times; its cache keys "
            "cover the model, decoder, prompt, schema and the `args` below, so changing any of them "
            "asks the LLM again."
        ),
        None,
    )
    args: list[str] = doc(
        "Extra `kg build` arguments, e.g. `[--concurrency, '8']`.", default_factory=list
    )


@dataclass
class AugmentationStageConfig:
    """Stage 2: LLM-proposed user-item triplets (LLMRec-style) for the variants that train with them."""

    enabled: bool = doc("Run the stage.", True)
    edges: str | None = doc(
        (
            "A replayable edge file (`python -m graphrec.augmentation generate` output) used as is; "
            "null = generate one with the base variant's first-seed run as the candidate model."
        ),
        None,
    )
    base_variant: str = doc(
        "Experiment variant whose trained run proposes the candidates when generating.", "lightgcn"
    )
    backend: Literal["embedded", "transformers", "openai"] = doc(
        "LLM backend when generating.", "embedded"
    )
    model: str | None = doc("openai / transformers model when generating.", None)
    base_url: str | None = doc("openai endpoint root when generating.", None)
    users: int = doc("Users sampled when generating (0 = all).", 200)
    args: list[str] = doc(
        "Extra `python -m graphrec.augmentation generate` arguments.", default_factory=list
    )


@dataclass
class InjectConfig:
    """Which experiment keys receive each stage's output path (keys like `variants.<variant>.model.kg`)."""

    kg: list[str] = doc(
        (
            "Keys set to the KG stage's export folder (what `model.kg` of the knowledge-aware models "
            "reads)."
        ),
        default_factory=list,
    )
    augmentation: list[str] = doc(
        "Keys set to the augmentation stage's edge file (what `train.augmentation.path` reads).",
        default_factory=list,
    )


@dataclass
class PipelineConfig:
    """The end-to-end job: stages, then an experiment whose variants consume the stages' outputs."""

    name: str = doc("Pipeline name; outputs go to `<out_dir>/<name>/`.", "pipeline")
    description: str = doc("One line shown above the table.", "")
    out_dir: str = doc("Parent folder of pipeline outputs.", "runs/pipeline")
    experiment: str = doc("Experiment YAML file (variants x seeds, baseline, significance).", "")
    kg: KGStageConfig = doc("Knowledge-graph extraction stage.", default_factory=KGStageConfig)
    augmentation: AugmentationStageConfig = doc(
        "LLM edge-augmentation stage.", default_factory=AugmentationStageConfig
    )
    inject: InjectConfig = doc(
        "Experiment keys that receive the stages' outputs.", default_factory=InjectConfig
    )
    report: bool = doc("Also write `<out_dir>/<name>/report.html` (needs matplotlib).", True)

    source: Path | None = field(
        default=None, init=False, repr=False, metadata={"doc": "(internal) the YAML file read"}
    )

    @property
    def directory(self) -> Path:
        return Path(self.out_dir) / self.name

    @property
    def experiment_file(self) -> Path:
        """The experiment YAML file, resolved against the pipeline file's folder."""
        if not self.experiment:
            raise ConfigError("experiment: the experiment YAML file is required")
        return self.resolve_path(self.experiment)

    def resolve_path(self, value: str) -> Path:
        """A path from the file, relative to the file's folder."""
        path = Path(value)
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path

    def resolve(self, value: str | None) -> Path | None:
        """A path from the file, relative to the file's folder."""
        return None if value is None else self.resolve_path(value)

    def validate(self, prefix: str = "") -> None:
        if not self.experiment:
            raise ConfigError("experiment: the experiment YAML file is required")
        for stage in STAGES:
            keys = getattr(self.inject, stage)
            if keys and not getattr(self, stage).enabled:
                raise ConfigError(
                    f"inject.{stage}: the {stage} stage is disabled but variants consume its output"
                )
            for key in keys:
                if not key.startswith("variants.") or key.count(".") < 3:
                    raise ConfigError(
                        f"inject.{stage}: {key!r} is not an experiment variant key "
                        "(variants.<variant>.<section>.<key>)"
                    )


def load_pipeline_config(
    path: str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> PipelineConfig:
    """Read a pipeline YAML file; ``overrides`` (``key=value``) change pipeline keys."""
    path = Path(path)
    tree = read_yaml_mapping(path)
    for text in overrides:
        keys, value = parse_override(text)
        set_nested(tree, keys, value, where=text)
    try:
        config = from_dict(PipelineConfig, tree)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    config.source = path
    return config


if __name__ == "__main__":  # pragma: no cover - documentation helper
    from graphrec.config_schema import section_rows as _section_rows

    print("\n".join(_section_rows(PipelineConfig, "")))
