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

import copy
import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from graphrec.errors import ConfigError


def doc(
    text: str,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[str] | None = None,
    pattern: str | None = None,
    path: bool = False,
) -> Any:
    """A dataclass field with a one-line documentation string and its valid range.

    ``ge`` / ``gt`` / ``le`` / ``lt`` bound a number (each element of a list of numbers),
    ``choices`` and ``pattern`` (a full-match regex) restrict a string (each element of a
    list of strings); ``path`` marks a file or folder name, whose parts must fit the file
    system (255 bytes each).  :func:`check_field` enforces them for every field when a
    config is built; floats must always be finite and strings at most
    :data:`MAX_STRING` characters.  ``null`` (where the type allows it) is never checked.
    """
    metadata: dict[str, Any] = {"doc": text}
    if path:
        metadata["path"] = True
    for key, value in (
        ("ge", ge),
        ("gt", gt),
        ("le", le),
        ("lt", lt),
        ("choices", choices),
        ("pattern", pattern),
    ):
        if value is not None:
            metadata[key] = tuple(value) if key == "choices" else value
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


#: longest string a config value may be (a path is at most 4096 bytes on Linux)
MAX_STRING = 4096
#: longest part of a value quoted in an error (a 10^6-character value is not echoed whole)
MAX_QUOTE = 200


def quote(value: Any, limit: int = MAX_QUOTE) -> str:
    """``repr(value)``, cut to about ``limit`` characters."""
    text = repr(value) if len(str(value)) < 4 * limit else repr(str(value)[: 2 * limit])
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def _bounds_text(meta: Mapping[str, Any]) -> str:
    parts = [
        f"{op} {meta[key]}"
        for key, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if key in meta
    ]
    return " and ".join(parts)


def _check_one(value: Any, meta: Mapping[str, Any], key: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: {value} is not a finite number")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for name, ok in (
            ("ge", value >= meta.get("ge", value)),
            ("gt", "gt" not in meta or value > meta["gt"]),
            ("le", value <= meta.get("le", value)),
            ("lt", "lt" not in meta or value < meta["lt"]),
        ):
            if not ok:
                raise ConfigError(
                    f"{key}: {quote(value)} is out of range (must be {_bounds_text(meta)})"
                )
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ConfigError(
                f"{key}: {quote(value)} is too long (at most {MAX_STRING} characters)"
            )
        if meta.get("path") and any(
            len(part.encode("utf-8", "surrogatepass")) > 255 for part in Path(value).parts
        ):
            raise ConfigError(
                f"{key}: {quote(value)} has a file or folder name longer than 255 bytes"
            )
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{key}: {quote(value)} is not one of {', '.join(meta['choices'])}")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            raise ConfigError(
                f"{key}: {quote(value)} is not valid (expected {meta.get('pattern_doc', meta['pattern'])})"
            )


def check_field(value: Any, meta: Mapping[str, Any], key: str) -> None:
    """Check ``value`` (or each element of a list) against a field's constraints (see :func:`doc`)."""
    if value is None:
        return
    if isinstance(value, list):
        for i, element in enumerate(value):
            _check_one(element, meta, f"{key}[{i}]")
    else:
        _check_one(value, meta, key)


#: accuracy metrics the evaluator computes (``graphrec.evaluation.metrics.ACCURACY_METRICS``; a test keeps them equal)
EVAL_METRICS = ("recall", "ndcg", "precision", "hitrate", "mrr", "map")
#: a run name is one folder name: no path separators, no leading dot (``..`` would leave ``out_dir``)
RUN_NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._+=@,-]{0,199}"


# --------------------------------------------------------------------------- sections
@dataclass
class DataConfig:
    """Which dataset to load and how to preprocess and split it."""

    dataset: str = doc(
        "Registry name (see `graphrec.datasets.list_datasets()`) or a directory of RecBole atomic files.",
        "ml-latest-small-tmdb",
        pattern=r"[^\x00]{1,4096}",
        path=True,
    )
    split: str | None = doc(
        "Split method: `ratio`, `temporal_global`, `temporal_user`, `leave_one_out` (last by time), `leave_one_out_random`; null = the dataset's default (pre-split datasets are used as shipped).",
        None,
    )
    ratios: list[float] | None = doc(
        "Train/valid/test ratios for ratio and temporal splits; null = dataset default (0.8/0.1/0.1).",
        None,
        ge=0.0,
        le=1.0,
    )
    rating_threshold: float | bool | None = doc(
        "Keep interactions with rating >= threshold as implicit positives; null = dataset default, false = keep every rating.",
        None,
    )
    k_core: int | None = doc(
        "Iterative k-core filter on users and items; null = dataset default, 0 = off.",
        None,
        ge=0,
        le=1_000_000,
    )
    seed: int | None = doc(
        "Seed of the random split; null = dataset default.", None, ge=0, le=2**32 - 1
    )
    split_dir: str | None = doc(
        "Load a split saved earlier (directory with `split.json`) instead of splitting.",
        None,
        path=True,
    )


@dataclass
class AugmentationConfig:
    """LLM-augmented BPR triplets (LLMRec-style) replayed from a file written by `python -m graphrec.augmentation generate`; no LLM is called during training."""

    path: str | None = doc(
        "Augmented edge file (JSONL with provenance); null = no augmentation. Relative paths are resolved from the working directory.",
        None,
        path=True,
    )
    fraction: float = doc(
        "Share of every training batch made of augmented triplets: a batch of B original triples gets round(B*f/(1-f)) augmented ones, drawn from the file in a fresh random order each epoch (cycling when the file is shorter).",
        0.1,
        ge=0.0,
        lt=1.0,
    )
    denoise: Literal["none", "drop", "keep_hard"] = doc(
        "Loss-based denoising, refreshed at each epoch start from the model's BPR loss on every augmented triplet: `drop` removes the `rate` share with the largest loss (likely LLM mistakes); `keep_hard` keeps only the `rate` share with the largest loss (LLMRec's released code, rate 0.29); `none` uses all.",
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
        "torch intra-op threads; null = graphrec's default, half the available CPUs (1-8; 1 on 2 cores), which keeps an epoch within 2x of its quiet time beside one CPU-bound job and 4x beside three (graphrec/training/threads.py); 0 = torch's default (one per core, collapses 3-20x under load).",
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
        "Accuracy metrics: recall, ndcg, precision, hitrate, mrr, map (coverage, gini and avg_popularity are always reported).",
        default_factory=lambda: ["recall", "ndcg", "precision", "hitrate", "mrr", "map"],
        choices=EVAL_METRICS,
    )
    batch_size: int = doc("Users scored per batch during full ranking.", 4096, ge=1, le=2**31 - 1)
    mask_valid_at_test: bool = doc(
        "Also mask each user's validation items when ranking for the test split.", False
    )


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
        "Model section: `name` selects the model; its keys are listed per model below.", None
    )
    train: TrainConfig = doc("Training section.", default_factory=TrainConfig)
    eval: EvalConfig = doc("Evaluation section.", default_factory=EvalConfig)

    def __post_init__(self) -> None:
        if self.model is None:
            from graphrec.models import model_config_class

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


# --------------------------------------------------------------------------- parsing
_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp)
        return f"list[{_type_name(inner)}]"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp``; return it (ints widen to floats)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"{key}: {quote(value)} is not one of {_type_name(tp)}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: null is not allowed (expected {_type_name(tp)})")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(
            f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {quote(value)}"
        )
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"{key}: expected a list ({_type_name(tp)}), got {type(value).__name__} {quote(value)}"
            )
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # PyYAML follows YAML 1.1, which reads `1e-7` (no dot) as a string.
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    else:  # pragma: no cover - a programming error in a config class
        raise TypeError(f"unsupported config type {tp!r} for {key}")
    raise ConfigError(
        f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {quote(value)}"
    )


def from_dict(cls: type, values: Mapping[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, validating keys and types."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"{prefix or 'config'}: expected a mapping of keys, got {type(values).__name__} {values!r}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            raise ConfigError(
                f"unknown config key '{full}'; valid keys{' in ' + prefix if prefix else ''}: {', '.join(sorted(fields))}"
            )
        if cls is RunConfig and key == "model":
            kwargs[key] = model_config_from_dict(value, full)
        else:
            kwargs[key] = _coerce(value, hints[key], full)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{prefix or 'config'}: {err}") from err
    # the one place every field's range is checked, from the constraints its doc() declares
    for f in dataclasses.fields(cls):
        if not (
            dataclasses.is_dataclass(hints[f.name]) or (cls is RunConfig and f.name == "model")
        ):
            check_field(
                getattr(obj, f.name), f.metadata, f"{prefix}.{f.name}" if prefix else f.name
            )
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(prefix)
    return obj


def model_config_from_dict(values: Mapping[str, Any] | None, prefix: str = "model") -> Any:
    """Build the config of the model named by ``values['name']``."""
    from graphrec.models import available_models, model_config_class

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


def to_dict(obj: Any) -> Any:
    """Plain-dict form of a config (for YAML dumps and checkpoints)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"train.learning_rate=0.01"`` into (["train", "learning_rate"], 0.01).

    The value is parsed as YAML (``safe_load``), so ``[10, 20]``, ``null`` and
    ``true`` work; it is never evaluated as Python.
    """
    if "=" not in text:
        raise ConfigError(f"override {quote(text)} must look like section.key=value")
    path, raw = text.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {quote(text)} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {quote(text)}: value is not valid YAML ({err})") from err
    return keys, value


def set_nested(tree: dict, keys: Sequence[str], value: Any, where: str | None = None) -> None:
    """Set ``tree[k1][k2]...[kn] = value``, creating sections; ``where`` prefixes errors."""
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}cannot set '{'.'.join(keys)}': '{key}' is not a section")
        node = child
    node[keys[-1]] = value


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


def merge_tree(base: dict, update: Mapping) -> dict:
    """Recursively merge ``update`` into ``base`` (in place; mappings merge, other values replace)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_tree(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def dump_config(config: RunConfig) -> str:
    """YAML text of a resolved config (saved beside each run)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


# --------------------------------------------------------------------------- reference
def _section_rows(cls: type, prefix: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]) or (cls is RunConfig and f.name == "model"):
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        default_text = (
            yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
        )
        rows.append(
            f"| `{prefix}{f.name}` | `{_type_name(hints[f.name])}` | `{default_text}` | {f.metadata.get('doc', '')} |"
        )
    return rows


def config_reference() -> str:
    """Markdown reference of every config key: type, default and meaning."""
    from graphrec.models import available_models, model_config_class

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
        *_section_rows(RunConfig, ""),
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
            *_section_rows(cls, f"{section}."),
        ]
    for name in available_models():
        cls = model_config_class(name)
        out += [
            "",
            f"## `model` with `name: {name}`",
            "",
            (cls.__doc__ or "").strip(),
            "",
            *header,
            *_section_rows(cls, "model."),
        ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(config_reference(), end="")
