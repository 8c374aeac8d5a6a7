"""Typed configuration: dataclasses filled from YAML files plus ``--set`` overrides.

A run is described by :class:`RunConfig` (sections ``data``, ``model``, ``train``,
``eval``).  The ``model`` section is polymorphic: its ``name`` selects the model's
own config dataclass from :mod:`graphrec.models`, and only that class's keys are
valid.  Every field carries a one-line doc in ``metadata["doc"]``;
:func:`config_reference` renders them all (``configs/README.md`` is generated from
it and a test keeps the two in sync).

Values are parsed with ``yaml.safe_load`` and checked against the field types;
nothing is ever evaluated as code.  Unknown keys and wrong types raise
:class:`~graphrec.errors.ConfigError` naming the key and listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from graphrec.config_schema import (
    MAX_QUOTE,
    MAX_STRING,
    check_field,
    doc,
    from_dict,
    merge_tree,
    parse_override,
    quote,
    section_rows,
    set_nested,
    to_dict,
)
from graphrec.data.loader import DataConfig
from graphrec.errors import ConfigError
from graphrec.models import available_models, model_config_class

__all__ = [
    "EVAL_METRICS",
    "MAX_QUOTE",
    "MAX_STRING",
    "RUN_NAME_PATTERN",
    "AugmentationConfig",
    "DataConfig",
    "EvalConfig",
    "RunConfig",
    "TrainConfig",
    "check_field",
    "config_reference",
    "doc",
    "dump_config",
    "from_dict",
    "load_config",
    "merge_tree",
    "model_config_from_dict",
    "parse_override",
    "quote",
    "set_nested",
    "to_dict",
]

#: accuracy metrics the evaluator computes (``graphrec.evaluation.metrics.ACCURACY_METRICS``; a test keeps them equal)
EVAL_METRICS = ("recall", "ndcg", "precision", "hitrate", "mrr", "map")
#: a run name is one folder name: no path separators, no leading dot (``..`` would leave ``out_dir``)
RUN_NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._+=@,-]{0,199}"


# --------------------------------------------------------------------------- sections
@dataclass
class AugmentationConfig:
    """LLM-augmented BPR triplets (LLMRec-style) replayed from a file written by `python -m graphrec.augmentation generate`; no LLM is called during training."""  # noqa: E501

    path: str | None = doc(
        "Augmented edge file (JSONL with provenance); null = no augmentation. Relative paths are "
        "resolved from the working directory.",
        None,
        path=True,
    )
    fraction: float = doc(
        "Share of every training batch made of augmented triplets: a batch of B original triples "
        "gets round(B*f/(1-f)) augmented ones, drawn from the file in a fresh random order each "
        "epoch (cycling when the file is shorter).",
        0.1,
        ge=0.0,
        lt=1.0,
    )
    denoise: Literal["none", "drop", "keep_hard"] = doc(
        "Loss-based denoising, refreshed at each epoch start from the model's BPR loss on every "
        "augmented triplet: `drop` removes the `rate` share with the largest loss (likely LLM "
        "mistakes); `keep_hard` keeps only the `rate` share with the largest loss (LLMRec's "
        "released code, rate 0.29); `none` uses all.",
        "none",
    )
    rate: float = doc(
        "Share of augmented triplets dropped (`drop`) or kept (`keep_hard`); ignored with `denoise: none`.",
        0.2,
        ge=0.0,
        le=1.0,
    )

    def validate(self, prefix: str = "") -> None:
        where = f"{prefix}." if prefix else ""
        if not 0.0 <= self.fraction < 1.0:
            raise ConfigError(f"{where}fraction: {self.fraction} must be in [0, 1)")
        if not 0.0 <= self.rate <= 1.0:
            raise ConfigError(f"{where}rate: {self.rate} must be in [0, 1]")
        if self.denoise == "keep_hard" and self.rate == 0.0:
            raise ConfigError(f"{where}rate: keep_hard with rate 0 keeps no augmented triplet")


@dataclass
class TrainConfig:
    """Optimisation, early stopping and checkpointing."""

    epochs: int = doc(
        "Maximum number of epochs (one epoch = every training interaction once as a positive).",
        1000,
        ge=1,
        le=10**9,
    )
    batch_size: int = doc(
        "Number of (user, positive, negative) triples per optimisation step.",
        4096,
        ge=1,
        le=2**31 - 1,
    )
    learning_rate: float = doc("Adam learning rate.", 1e-3, gt=0.0, le=1e3)
    l2_weight: float = doc(
        "Weight of the L2 penalty on the batch's ego (layer-0) embeddings, divided by the batch size.",
        1e-4,
        ge=0.0,
        le=1e6,
    )
    eval_every: int = doc(
        "Evaluate on the validation split every this many epochs (the check interval).",
        1,
        ge=1,
        le=10**9,
    )
    patience: int = doc(
        "Stop after this many checks without improvement of `select_metric`; 0 = never stop early.",
        10,
        ge=0,
        le=10**9,
    )
    select_metric: str = doc(
        "Validation metric that selects the best epoch, e.g. `recall@20` or `ndcg@20`.",
        "recall@20",
        pattern=r"[a-z_]+@[0-9]{1,7}",
    )
    seed: int = doc(
        "Seed of initialisation and negative sampling; a fixed seed gives identical metrics on CPU.",
        2024,
        ge=0,
        le=2**32 - 1,
    )
    device: str = doc(
        "`cpu`, `cuda`, `cuda:1`, ... (`auto` = cuda when available).",
        "cpu",
        pattern=r"auto|cpu|mps|cuda(:[0-9]{1,3})?",
    )
    num_threads: int | None = doc(
        "torch intra-op threads; null = graphrec's default, half the available CPUs (1-8; 1 on 2 "
        "cores), which keeps an epoch within 2x of its quiet time beside one CPU-bound job and 4x "
        "beside three (graphrec/training/threads.py); 0 = torch's default (one per core, "
        "collapses 3-20x under load).",
        None,
        ge=0,
        le=4096,
    )
    resume: bool = doc("Continue from the run directory's last checkpoint when one exists.", True)
    progress: bool = doc("Show tqdm progress bars on a terminal.", True)
    augmentation: AugmentationConfig = doc(
        "LLM-augmented triplets (section `train.augmentation`).", default_factory=AugmentationConfig
    )


@dataclass
class EvalConfig:
    """Full-ranking evaluation."""

    ks: list[int] = doc(
        "Cut-offs K for every metric@K.", default_factory=lambda: [10, 20], ge=1, le=1_000_000
    )
    metrics: list[str] = doc(
        "Accuracy metrics: recall, ndcg, precision, hitrate, mrr, map (coverage, gini and "
        "avg_popularity are always reported).",
        default_factory=lambda: ["recall", "ndcg", "precision", "hitrate", "mrr", "map"],
        choices=EVAL_METRICS,
    )
    batch_size: int = doc("Users scored per batch during full ranking.", 4096, ge=1, le=2**31 - 1)
    mask_valid_at_test: bool = doc(
        "Also mask each user's validation items when ranking for the test split.", False
    )


def model_config_from_dict(values: Mapping[str, Any] | None, prefix: str = "model") -> Any:
    """Build the config of the model named by ``values['name']``."""
    if values is not None and not isinstance(values, Mapping):
        raise ConfigError(
            f"{prefix}: expected a mapping with the model's `name` and settings, "
            f"got {type(values).__name__} {quote(values)}"
        )
    values = dict(values or {})
    name = values.get("name", "lightgcn")
    if not isinstance(name, str) or name not in available_models():
        raise ConfigError(
            f"{prefix}.name: unknown model {name!r}; available: {', '.join(available_models())}"
        )
    return from_dict(model_config_class(name), values, prefix)


@dataclass
class RunConfig:
    """A complete training run."""

    name: str | None = doc(
        "Run name; the run directory is `<out_dir>/<name>`. null = `<dataset>-<model>-seed<seed>`.",
        None,
        pattern=RUN_NAME_PATTERN,
    )
    out_dir: str = doc("Parent directory of run directories.", "runs", path=True)
    data: DataConfig = doc("Dataset section.", default_factory=DataConfig)
    model: Any = doc(
        "Model section: `name` selects the model; its keys are listed per model below.",
        None,
        build=model_config_from_dict,
    )
    train: TrainConfig = doc("Training section.", default_factory=TrainConfig)
    eval: EvalConfig = doc("Evaluation section.", default_factory=EvalConfig)

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = model_config_class("lightgcn")()

    def validate(self, prefix: str = "") -> None:
        """The output folder must be usable (checked before anything is written)."""
        for key, path in (("out_dir", Path(self.out_dir)), ("name", self.run_dir)):
            try:
                unusable = path.exists() and not path.is_dir()
            except OSError as err:  # a name too long, a loop of links ...
                raise ConfigError(
                    f"{key}: {quote(str(path))} is not a usable directory ({err.strerror})"
                ) from None
            if unusable:
                raise ConfigError(f"{key}: {quote(str(path))} exists and is not a directory")

    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        dataset = Path(self.data.dataset).name
        return f"{dataset}-{self.model.name}-seed{self.train.seed}"

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.run_name


def load_config(
    paths: str | Path | Sequence[str | Path] | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """Load YAML config file(s) (later files override earlier ones) plus ``--set`` overrides."""
    if paths is None:
        paths = []
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    tree: dict = {}
    sources: dict[
        str, str
    ] = {}  # dotted key -> the file (or --set) that gave it, for error messages
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise ConfigError(
                f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start})"
            ) from None
        except OSError as err:
            raise ConfigError(
                f"{path}: cannot read the config file ({err.strerror or err})"
            ) from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {str(err)[:500]}") from err
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path}: the top level must be a mapping of sections, got {type(loaded).__name__}"
            )
        merge_tree(tree, loaded)
        sources.update({key: str(path) for key in _dotted_keys(loaded)})
    for text in overrides:
        keys, value = parse_override(text)
        set_nested(tree, keys, value)
        sources[".".join(keys)] = "--set"
    try:
        return from_dict(RunConfig, tree)
    except ConfigError as err:  # name the file that set the key (a --set override needs no pointer)
        raise ConfigError(
            _with_source(str(err), {k: v for k, v in sources.items() if v != "--set"})
        ) from None


def _dotted_keys(tree: Mapping, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        keys.append(full)
        if isinstance(value, Mapping):
            keys += _dotted_keys(value, full)
    return keys


def _with_source(message: str, sources: Mapping[str, str]) -> str:
    """Prefix an error about key ``a.b`` with the file (or ``--set``) that set it last."""
    named = message.removeprefix("unknown config key '")
    matches = [
        key
        for key in sources
        if named.startswith(key) and named[len(key) : len(key) + 1] in ("", ":", " ", "[", "'", ".")
    ]
    return f"{sources[max(matches, key=len)]}: {message}" if matches else message


def dump_config(config: RunConfig) -> str:
    """YAML text of a resolved config (saved beside each run)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


# --------------------------------------------------------------------------- reference
def config_reference() -> str:
    """Markdown reference of every config key: type, default and meaning."""
    header = ["| key | type | default | meaning |", "|---|---|---|---|"]
    out = [
        "# Configuration reference",
        "",
        "Generated by `python -m graphrec.config > configs/README.md`; a test keeps it in sync with the code.",
        "Config files are YAML with the sections below; override any key on the command line with",
        "`--set section.key=value` (the value is parsed as YAML, e.g. `--set eval.ks=[10,20]`).",
        "Unknown keys and wrong types are errors that list the valid keys.",
        "",
        "## Top level",
        "",
        *header,
        *section_rows(RunConfig, ""),
    ]
    sections = (
        ("data", DataConfig),
        ("train", TrainConfig),
        ("train.augmentation", AugmentationConfig),
        ("eval", EvalConfig),
    )
    for section, cls in sections:
        out += [
            "",
            f"## `{section}`",
            "",
            (cls.__doc__ or "").strip(),
            "",
            *header,
            *section_rows(cls, f"{section}."),
        ]
    for name in available_models():
        model_cls = model_config_class(name)
        out += [
            "",
            f"## `model` with `name: {name}`",
            "",
            (model_cls.__doc__ or "").strip(),
            "",
            *header,
            *section_rows(model_cls, "model."),
        ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(config_reference(), end="")
