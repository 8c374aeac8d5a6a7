"""Typed experiment configuration: variants x seeds on one dataset split.

An experiment YAML file looks like this (every key is documented on the dataclasses
below; ``python -m graphrec.experiment.config`` prints the reference)::

    name: movies-3x3
    seeds: [2024, 2025, 2026]
    baseline: mf
    defaults:                      # a run-config tree applied to every variant
      data: {dataset: ml-latest-small-tmdb}
      train: {epochs: 40, eval_every: 5, patience: 3}
    variants:
      mf:
        config: ../ml-latest-small-tmdb/mf.yaml
      lightgcn:
        config: ../ml-latest-small-tmdb/lightgcn.yaml
        model: {num_layers: 2}
      lightgcn-kg:                 # a pipeline variant is just another named run config
        config: ../ml-latest-small-tmdb/lightgcn.yaml
        set: ["model.kg_weight=0.1"]

A *variant* is a named run configuration: config files, inline sections and
``--set``-style overrides.  Variants that come later (+KG, +augmentation,
+alignment) are new entries here, nothing else changes.

How a variant's run config is assembled (later steps win):

1. the experiment's ``base_config`` files, then the variant's ``config`` files
   (relative paths are relative to the experiment file's directory);
2. the experiment's ``defaults`` tree (shared settings such as epochs);
3. the variant's inline ``model``/``data``/``train``/``eval`` sections;
4. the variant's ``set`` list, then overrides given on the command line;
5. ``train.seed``, ``out_dir`` and ``name`` set by the experiment
   (``<out_dir>/<name>/runs/<variant>/seed<seed>``).

All variants must resolve to the same ``data`` section (one split) and the same
``eval`` protocol (cut-offs and metrics), otherwise the comparison would be
meaningless; :func:`resolve_variants` raises a :class:`ConfigError` naming the two
variants and the differing keys.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from graphrec.config import RunConfig
from graphrec.config_schema import (
    doc,
    from_dict,
    merge_tree,
    parse_override,
    set_nested,
    to_dict,
    type_name,
)
from graphrec.errors import ConfigError

__all__ = [
    "ExperimentConfig",
    "SelectionConfig",
    "SignificanceConfig",
    "VariantConfig",
    "load_experiment_config",
    "merge_tree",
    "read_yaml_mapping",
    "resolve_variants",
    "run_config_for",
    "flatten",
    "experiment_reference",
]

#: Run-config keys that never change a result (so a saved run stays valid when they differ).
NEUTRAL_KEYS = frozenset(
    {
        "name",
        "out_dir",
        "train.progress",
        "train.num_threads",
        "train.resume",
        "train.device",
        "eval.batch_size",
    }
)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]*$")


@dataclass
class SelectionConfig:
    """A row chosen on validation: the variant among ``among`` whose mean validation ``metric``
    over seeds is highest, shown (and tested) under its own name with the chosen variant's runs."""

    name: str = doc("Row name of the selection (must not be a variant's name).", "selected")
    label: str = doc("Row label; the chosen variant's label is appended.", "best on validation")
    among: list[str] = doc("Candidate variants (at least one).", default_factory=list)
    metric: str = doc(
        "Validation metric that chooses: one of `eval.metrics` at one of `eval.ks` (mean over "
        "seeds; ties go to the earlier candidate).",
        "recall@20",
        pattern=r"^[a-z_]+@\d+$",
    )


@dataclass
class SignificanceConfig:
    """Paired significance tests of every variant against the baseline."""

    test: Literal["wilcoxon", "ttest"] = doc(
        "Test whose p-values give the marks: `wilcoxon` (signed-rank) or `ttest` (paired t-test); "
        "both are always reported.",
        "wilcoxon",
    )
    correction: Literal["holm", "bonferroni", "none"] = doc(
        "Multiple-comparison correction over each family of comparisons.", "holm"
    )
    family: Literal["per_metric", "all"] = doc(
        "Family of the correction: `per_metric` = the variants-vs-baseline comparisons of one "
        "metric; `all` = every (variant, metric) comparison in the table.",
        "per_metric",
    )
    alpha: float = doc(
        "Significance level of the marks (`*` p < alpha, `**` p < alpha / 5, on corrected p-values).",
        0.05,
    )
    split: Literal["test", "valid"] = doc(
        "Split whose per-user vectors are compared (and whose means are in the table).", "test"
    )

    def validate(self, prefix: str) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"{prefix}.alpha: must be in (0, 1), got {self.alpha}")


@dataclass
class VariantConfig:
    """One compared configuration: a model or a pipeline variant (model + overrides)."""

    config: str | list[str] | None = doc(
        "Run-config YAML file(s), relative to the experiment file; later files win.", None
    )
    label: str | None = doc("Display name in tables and plots; null = the variant's key.", None)
    description: str = doc("Free text shown in the report.", "")
    model: Any = doc("Inline `model` section (merged over the files).", None)
    data: Any = doc(
        "Inline `data` section (must resolve to the same split as every other variant).", None
    )
    train: Any = doc("Inline `train` section.", None)
    eval: Any = doc("Inline `eval` section.", None)
    set: list[str] = doc(
        "Overrides `section.key=value` (YAML values), applied after the inline sections.",
        default_factory=list,
    )

    def validate(self, prefix: str) -> None:
        for key in ("model", "data", "train", "eval"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(
                    f"{prefix}.{key}: expected a mapping of keys, got {type(value).__name__} {value!r}"
                )

    @property
    def files(self) -> list[str]:
        if self.config is None:
            return []
        return [self.config] if isinstance(self.config, str) else list(self.config)


@dataclass
class ExperimentConfig:
    """Several variants x several seeds on one dataset split, compared against a baseline."""

    name: str | None = doc(
        "Experiment name; results go to `<out_dir>/<name>`. null = the YAML file's stem.", None
    )
    out_dir: str = doc("Parent directory of experiment directories.", "runs/experiments")
    description: str = doc("Free text shown in the report.", "")
    seeds: list[int] = doc(
        "Training seeds (`train.seed`); every variant runs once per seed on the same split.",
        default_factory=lambda: [2024, 2025, 2026],
    )
    baseline: str | None = doc(
        "Variant every other variant is tested against; null = the first variant.", None
    )
    metrics: list[str] = doc(
        "Table columns (mean ± std over seeds); empty = recall and ndcg at every `eval.ks`.",
        default_factory=list,
    )
    base_config: str | list[str] | None = doc(
        "Run-config YAML file(s) applied under every variant's own files.", None
    )
    defaults: Any = doc(
        "Run-config tree (`data`, `train`, `eval`, `model` keys) applied to every variant after its files.",
        None,
    )
    variants: Any = doc(
        "Mapping variant name -> variant (see `VariantConfig`), in table order.", None
    )
    significance: SignificanceConfig = doc(
        "Significance testing.", default_factory=SignificanceConfig
    )
    select: SelectionConfig | None = doc(
        "A row chosen on validation among some variants (e.g. the main job's `full pipeline` = "
        "the best validated combination of its KG, augmentation, alignment and text variants); "
        "null = none.",
        None,
    )
    tensorboard: bool = doc(
        "Also log each run's epochs to TensorBoard (`<experiment>/tensorboard/`), when tensorboard is installed.",
        False,
    )

    # Set by the loader, not by YAML: where relative config paths are resolved.
    source: Path | None = field(
        default=None, init=False, repr=False, metadata={"doc": "(internal) the YAML file read"}
    )

    def validate(self, prefix: str) -> None:
        if not self.seeds:
            raise ConfigError(f"{prefix or 'experiment'}.seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{prefix or 'experiment'}.seeds: duplicate seeds {self.seeds}")
        if self.defaults is not None and not isinstance(self.defaults, Mapping):
            raise ConfigError(
                f"defaults: expected a mapping of run-config sections, got {type(self.defaults).__name__}"
            )

    @property
    def experiment_name(self) -> str:
        if self.name:
            return self.name
        if self.source is not None:
            return self.source.stem
        raise ConfigError("name: an experiment built in Python needs a name")

    @property
    def directory(self) -> Path:
        return Path(self.out_dir) / self.experiment_name

    @property
    def variant_specs(self) -> dict[str, VariantConfig]:
        return parse_variants(self.variants)

    @property
    def baseline_name(self) -> str:
        names = list(self.variant_specs)
        if self.baseline is None:
            return names[0]
        if self.baseline not in names:
            raise ConfigError(
                f"baseline: {self.baseline!r} is not a variant; variants: {', '.join(names)}"
            )
        return self.baseline

    def label(self, variant: str) -> str:
        return self.variant_specs[variant].label or variant

    def check_selection(self) -> None:
        """The selection names existing variants and a row name of its own."""
        if self.select is None:
            return
        names = list(self.variant_specs)
        if not self.select.among:
            raise ConfigError("select.among: name at least one variant")
        unknown = [v for v in self.select.among if v not in names]
        if unknown:
            raise ConfigError(
                f"select.among: {', '.join(map(repr, unknown))} not a variant; "
                f"variants: {', '.join(names)}"
            )
        if self.select.name in names:
            raise ConfigError(f"select.name: {self.select.name!r} is already a variant's name")


def parse_variants(raw: Any) -> dict[str, VariantConfig]:
    """Variants from YAML: a mapping ``name -> spec`` or a list of specs with a ``name`` key."""
    if raw is None:
        raise ConfigError("variants: an experiment needs at least one variant")
    if isinstance(raw, list):
        items = []
        for i, spec in enumerate(raw):
            if not isinstance(spec, Mapping) or "name" not in spec:
                raise ConfigError(f"variants[{i}]: each list entry needs a 'name' key")
            spec = dict(spec)
            items.append((str(spec.pop("name")), spec))
    elif isinstance(raw, Mapping):
        items = [(str(k), v) for k, v in raw.items()]
    else:
        raise ConfigError(f"variants: expected a mapping name -> variant, got {type(raw).__name__}")
    if not items:
        raise ConfigError("variants: an experiment needs at least one variant")
    out: dict[str, VariantConfig] = {}
    for name, spec in items:
        if not _NAME_RE.match(name):
            raise ConfigError(
                f"variants.{name}: a variant name is used as a directory name: letters, digits, '_.+-' only"
            )
        if name in out:
            raise ConfigError(f"variants: duplicate variant {name!r}")
        out[name] = from_dict(VariantConfig, spec or {}, f"variants.{name}")
    return out


# --------------------------------------------------------------------------- loading
def read_yaml_mapping(path: str | Path) -> dict:
    """Read a YAML file whose top level is a mapping (``safe_load``; nothing is evaluated)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(loaded).__name__}")
    return loaded


def load_experiment_config(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Load an experiment YAML file; ``overrides`` (``key=value``) change experiment keys, e.g. ``seeds=[1,2]``."""
    path = Path(path)
    tree = read_yaml_mapping(path)
    for text in overrides:
        keys, value = parse_override(text)
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set '{'.'.join(keys)}': '{key}' is not a section")
        node[keys[-1]] = value
    try:
        config = from_dict(ExperimentConfig, tree)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    config.source = path
    try:
        _ = (
            config.variant_specs,
            config.baseline_name,
        )  # validate the variants early, naming the file
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    return config


def _resolve_file(name: str, config: ExperimentConfig, where: str) -> Path:
    path = Path(name)
    if not path.is_absolute() and config.source is not None:
        path = config.source.parent / path
    if not path.is_file():
        raise ConfigError(f"{where}: config file {name!r} not found (looked at {path})")
    return path


def run_config_for(
    config: ExperimentConfig, variant: str, seed: int, overrides: Sequence[str] = ()
) -> RunConfig:
    """The run config of ``variant`` with ``seed`` (see the module docstring for the order)."""
    specs = config.variant_specs
    if variant not in specs:
        raise ConfigError(f"unknown variant {variant!r}; variants: {', '.join(specs)}")
    spec = specs[variant]
    where = f"{config.source or 'experiment'}: variants.{variant}"
    tree: dict = {}
    base_files = (
        []
        if config.base_config is None
        else (
            [config.base_config]
            if isinstance(config.base_config, str)
            else list(config.base_config)
        )
    )
    for name in base_files:
        merge_tree(
            tree, read_yaml_mapping(_resolve_file(name, config, f"{config.source}: base_config"))
        )
    for name in spec.files:
        merge_tree(tree, read_yaml_mapping(_resolve_file(name, config, f"{where}.config")))
    if config.defaults:
        merge_tree(tree, config.defaults)
    for section in ("data", "model", "train", "eval"):
        inline = getattr(spec, section)
        if inline:
            tree.setdefault(section, {})
            if not isinstance(tree[section], dict):
                tree[section] = {}
            merge_tree(tree[section], inline)
    for text in [*spec.set, *overrides]:
        keys, value = parse_override(text)
        set_nested(tree, keys, value, where)
    set_nested(tree, ["train", "seed"], int(seed), where)
    tree["out_dir"] = str(config.directory / "runs" / variant)
    tree["name"] = f"seed{seed}"
    try:
        return from_dict(RunConfig, tree)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"seed": 1}}`` -> ``{"train.seed": 1}`` (lists are leaves)."""
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def config_differences(
    a: RunConfig | Mapping, b: RunConfig | Mapping, ignore: frozenset[str] = NEUTRAL_KEYS
) -> list[str]:
    """Flattened keys whose values differ between two run configs (``ignore``d keys left out)."""
    fa = flatten(a if isinstance(a, Mapping) else to_dict(a))
    fb = flatten(b if isinstance(b, Mapping) else to_dict(b))
    return sorted(k for k in set(fa) | set(fb) if k not in ignore and fa.get(k) != fb.get(k))


def resolve_variants(
    config: ExperimentConfig, overrides: Sequence[str] = ()
) -> dict[str, dict[int, RunConfig]]:
    """Every variant's run config for every seed; checks that all share one split and protocol."""
    out: dict[str, dict[int, RunConfig]] = {}
    for variant in config.variant_specs:
        out[variant] = {
            seed: run_config_for(config, variant, seed, overrides) for seed in config.seeds
        }
    first_name = next(iter(out))
    first = out[first_name][config.seeds[0]]
    for variant, runs in out.items():
        run = runs[config.seeds[0]]
        for section in ("data", "eval"):
            diff = config_differences(
                {section: to_dict(getattr(first, section))},
                {section: to_dict(getattr(run, section))},
            )
            if diff:
                raise ConfigError(
                    f"{config.source or 'experiment'}: variants {first_name!r} and {variant!r} differ in "
                    f"{', '.join(diff)}; every variant of an experiment must use the same data split and "
                    "evaluation protocol (put shared settings under 'defaults')"
                )
    return out


def dataclass_reference(cls: type, prefix: str, skip: Sequence[str] = ()) -> list[str]:
    """Markdown table rows (key, type, default, meaning) of a config dataclass's fields."""
    hints = typing.get_type_hints(cls)
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        if dataclasses.is_dataclass(default):
            text = "(section below)"
        else:
            text = (
                yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
            )
        rows.append(
            f"| `{prefix}{f.name}` | `{type_name(hints[f.name])}` | `{text}` | {f.metadata.get('doc', '')} |"
        )
    return rows


def experiment_reference() -> str:
    """Markdown reference of the experiment file's keys."""
    lines: list[str] = []
    for cls, prefix in (
        (ExperimentConfig, ""),
        (VariantConfig, "variants.<name>."),
        (SignificanceConfig, "significance."),
        (SelectionConfig, "select."),
    ):
        lines += [
            "",
            f"### {cls.__name__}",
            "",
            (cls.__doc__ or "").strip(),
            "",
            *dataclass_reference(cls, prefix),
        ]
    return "\n".join(lines).strip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(experiment_reference(), end="")
