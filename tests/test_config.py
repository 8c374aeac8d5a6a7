"""Typed configs: YAML + overrides, clear errors, documented defaults."""

from pathlib import Path

import pytest
import yaml

from graphrec.config import (
    RunConfig,
    config_reference,
    dump_config,
    load_config,
    parse_override,
)
from graphrec.errors import ConfigError
from graphrec.experiment import Experiment
from graphrec.experiment.search import load_search_config
from graphrec.models import LightGCNConfig, MFConfig
from graphrec.pipeline import load_pipeline_config

REPO = Path(__file__).resolve().parents[1]


def test_defaults_and_overrides():
    config = load_config(
        None,
        ["model.num_layers=2", "eval.ks=[5, 50]", "train.learning_rate=1e-2", "data.seed=null"],
    )
    assert isinstance(config, RunConfig)
    assert isinstance(config.model, LightGCNConfig) and config.model.num_layers == 2
    assert config.eval.ks == [5, 50]
    assert config.train.learning_rate == 0.01
    assert config.data.seed is None


def test_yaml_1_1_float_without_dot_is_accepted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  l2_weight: 1e-7\n")
    assert load_config(path).train.l2_weight == 1e-7


def test_model_name_selects_the_config_class():
    config = load_config(None, ["model.name=mf", "model.embedding_dim=16"])
    assert isinstance(config.model, MFConfig) and config.model.embedding_dim == 16


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.learnig_rate=0.1"])
    message = str(err.value)
    assert "unknown config key 'train.learnig_rate'" in message
    assert "learning_rate" in message and "batch_size" in message


def test_key_of_another_model_is_rejected():
    with pytest.raises(ConfigError, match=r"unknown config key 'model.num_layers'.*embedding_dim"):
        load_config(None, ["model.name=mf", "model.num_layers=2"])


def test_unknown_top_level_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trian:\n  epochs: 3\n")
    with pytest.raises(
        ConfigError,
        match="unknown config key 'trian'; valid keys: data, eval, model, name, out_dir, train",
    ):
        load_config(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=ten", "train.epochs: expected int, got str 'ten'"),
        ("train.epochs=1.5", "train.epochs: expected int, got float 1.5"),
        ("train.resume=maybe", "train.resume: expected bool"),
        ("eval.ks=20", r"eval.ks: expected a list \(list\[int\]\)"),
        ("eval.ks=[10, x]", r"eval.ks\[1\]: expected int"),
        (
            "model.layer_combination=max",
            "model.layer_combination: 'max' is not one of 'mean' | 'sum'",
        ),
        ("model.name=gcn", r"model.name: unknown model .gcn.; available: .*lightgcn.*mf"),
        ("model.num_layers=-1", "model.num_layers: -1 is out of range"),
        ("train.epochs=__import__('os').system('true')", "train.epochs: expected int, got str"),
    ],
)
def test_wrong_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        parse_override("train.epochs")
    with pytest.raises(ConfigError, match="'epochs' is not a section"):
        load_config(None, ["train.epochs=3", "train.epochs.x=1"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=f"{bad}: not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(scalar)


def test_later_files_override_earlier_ones(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("train:\n  epochs: 5\n  batch_size: 128\n")
    b.write_text("train:\n  epochs: 7\n")
    config = load_config([a, b])
    assert (config.train.epochs, config.train.batch_size) == (7, 128)


def test_dump_round_trips(tmp_path):
    config = load_config(None, ["model.name=mf", "train.epochs=3"])
    path = tmp_path / "saved.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def _config_kind(path: Path) -> str:
    """Which loader reads a shipped YAML file: experiments, searches and pipelines have their own."""
    tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if path.parent.name == "search" or "space" in tree:
        return "search"
    if "experiment" in tree:
        return "pipeline"
    if "variants" in tree:
        return "experiment"
    return "run"


SHIPPED = sorted((REPO / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_configs_load(path):
    kind = _config_kind(path)
    if kind == "run":
        load_config(path)
    elif kind == "experiment":
        Experiment.from_yaml(path)  # resolves every variant's run config
    elif kind == "pipeline":
        config = load_pipeline_config(path)
        assert config.resolve(config.experiment).is_file()
    else:
        load_search_config(path)


def test_reference_documents_every_key_and_is_in_sync():
    reference = config_reference()
    for key in (
        "train.learning_rate",
        "data.rating_threshold",
        "eval.mask_valid_at_test",
        "model.layer_combination",
    ):
        assert f"`{key}`" in reference
    assert "| `model.num_layers` | `int` | `3` |" in reference
    committed = (REPO / "configs" / "README.md").read_text(encoding="utf-8")
    assert committed == reference, (
        "configs/README.md is stale: run `python -m graphrec.config > configs/README.md`"
    )
