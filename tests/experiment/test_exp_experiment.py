"""The Experiment API and `evaluate.py experiment`: variants x seeds, reuse, adding variants, errors."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import (
    REPO,
    TWO_VARIANTS,
    write_experiment,
)  # at import time: pytest's `conftest` is this folder's then

from graphrec.cli import evaluate as evaluate_cli
from graphrec.errors import ConfigError
from graphrec.experiment import Experiment, load_experiment, load_experiment_config, run_config_for
from graphrec.experiment.experiment import select_on_validation
from graphrec.io import read_jsonl


def test_experiment_writes_runs_manifest_results_and_table(finished_experiment):
    exp, result, _ = finished_experiment
    root = exp.directory
    for variant in ("mf", "lightgcn"):
        for seed in (1, 2):
            run = root / "runs" / variant / f"seed{seed}"
            for name in (
                "config.yaml",
                "results.json",
                "metrics.jsonl",
                "per_user/test.npz",
                "per_user/valid.npz",
            ):
                assert (run / name).exists(), (run, name)
            saved = yaml.safe_load((run / "config.yaml").read_text())
            assert saved["train"]["seed"] == seed
            assert saved["model"]["name"] == variant
    for name in ("experiment.json", "experiment.jsonl", "results.json", "table.md"):
        assert (root / name).exists(), name
    table = result.table()
    assert "MF (baseline)" in table and "LightGCN" in table
    assert "recall@20" in table and "±" in table and "train s" in table
    assert "Holm" in table
    assert [s.name for s in result.summaries] == ["mf", "lightgcn"]
    assert all(len(s.seeds) == 2 for s in result.summaries)
    # the table's mean is the mean of the runs' own test metrics
    runs = result.records["lightgcn"]
    mean = sum(r.metrics("test")["recall@20"] for r in runs) / 2
    assert result.summaries[1].metrics["recall@20"].mean == pytest.approx(mean)
    assert {c.metric for c in result.comparisons} == {
        "recall@10",
        "recall@20",
        "ndcg@10",
        "ndcg@20",
    }
    saved = json.loads((root / "results.json").read_text())
    assert saved["baseline"] == "mf" and len(saved["comparisons"]) == 4


def test_rerunning_reuses_every_finished_run(finished_experiment, ml_data):
    exp, result, path = finished_experiment
    stamps = {p: p.stat().st_mtime_ns for p in exp.directory.glob("runs/*/seed*/results.json")}
    again = Experiment.from_yaml(path, ["train.num_threads=2"]).run(
        quiet=True
    )  # threads cannot change results
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    events = read_jsonl(exp.directory / "experiment.jsonl")
    assert [e["event"] for e in events[-6:]] == ["experiment_started"] + ["run_reused"] * 4 + [
        "experiment_finished"
    ]
    assert again.table() == result.table()
    # and the directory alone (no YAML) gives the same table
    assert load_experiment(exp.directory).table() == result.table()


def test_adding_a_variant_trains_only_the_new_runs(tmp_path, ml_data):
    path = write_experiment(
        tmp_path / "exp.yaml", tmp_path / "out", {"mf": TWO_VARIANTS["mf"]}, seeds=[1]
    )
    Experiment.from_yaml(path).run(data=ml_data, quiet=True)
    first = (tmp_path / "out" / "exp" / "runs" / "mf" / "seed1" / "results.json").stat().st_mtime_ns
    variants = {
        **TWO_VARIANTS,
        "mf-lr": {
            "config": None,
            "model": {"name": "mf", "embedding_dim": 16},
            "set": ["train.learning_rate=0.01"],
        },
    }
    write_experiment(path, tmp_path / "out", variants, seeds=[1])
    result = Experiment.from_yaml(path).run(data=ml_data, quiet=True)
    assert (
        tmp_path / "out" / "exp" / "runs" / "mf" / "seed1" / "results.json"
    ).stat().st_mtime_ns == first
    events = [
        e
        for e in read_jsonl(tmp_path / "out" / "exp" / "experiment.jsonl")
        if e["event"].startswith("run_")
    ]
    assert [(e["event"], e["variant"]) for e in events if e["event"] != "run_started"] == [
        ("run_finished", "mf"),
        ("run_reused", "mf"),
        ("run_finished", "lightgcn"),
        ("run_finished", "mf-lr"),
    ]
    assert [s.name for s in result.summaries] == ["mf", "lightgcn", "mf-lr"]
    saved = yaml.safe_load(
        (tmp_path / "out" / "exp" / "runs" / "mf-lr" / "seed1" / "config.yaml").read_text()
    )
    assert saved["train"]["learning_rate"] == 0.01

    # changing a trained variant's settings is an error naming the key and the way out
    variants["mf"] = {"model": {"name": "mf", "embedding_dim": 32}}
    write_experiment(path, tmp_path / "out", variants, seeds=[1])
    with pytest.raises(ConfigError, match=r"model.embedding_dim.*--rerun mf"):
        Experiment.from_yaml(path).run(data=ml_data, quiet=True)
    # ... and --rerun retrains it
    result = Experiment.from_yaml(path).run(data=ml_data, quiet=True, rerun=["mf"], variants=["mf"])
    saved = yaml.safe_load(
        (tmp_path / "out" / "exp" / "runs" / "mf" / "seed1" / "config.yaml").read_text()
    )
    assert saved["model"]["embedding_dim"] == 32


def test_variant_resolution_order_and_relative_config_files(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "train: {learning_rate: 0.5, batch_size: 111}\nmodel: {name: mf}\n"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model.yaml").write_text(
        "model: {name: lightgcn, num_layers: 4}\ntrain: {batch_size: 222}\n"
    )
    path = tmp_path / "e.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "order",
                "out_dir": str(tmp_path / "o"),
                "seeds": [7],
                "base_config": "base.yaml",
                "defaults": {"train": {"batch_size": 333, "epochs": 2}},
                "variants": {
                    "v": {
                        "config": "sub/model.yaml",
                        "model": {"num_layers": 2},
                        "set": ["model.num_layers=3"],
                    }
                },
            }
        )
    )
    config = load_experiment_config(path)
    run = run_config_for(config, "v", 7, ["train.epochs=5"])
    assert run.model.name == "lightgcn" and run.model.num_layers == 3  # files < inline < set
    assert run.train.batch_size == 333  # defaults override the files
    assert run.train.learning_rate == 0.5  # from base_config
    assert run.train.epochs == 5  # command-line overrides last
    assert run.train.seed == 7
    assert run.run_dir == tmp_path / "o" / "order" / "runs" / "v" / "seed7"


def test_config_errors_name_the_file_and_key(tmp_path):
    path = write_experiment(
        tmp_path / "bad.yaml", tmp_path, {"mf": {"model": {"name": "mf", "bogus": 1}}}
    )
    with pytest.raises(
        ConfigError, match=r"bad.yaml.*variants.mf.*unknown config key 'model.bogus'"
    ):
        Experiment.from_yaml(path)
    path = write_experiment(tmp_path / "bad2.yaml", tmp_path, {"mf": {"modle": {}}})
    with pytest.raises(ConfigError, match=r"bad2.yaml.*unknown config key 'variants.mf.modle'"):
        load_experiment_config(path)
    path = write_experiment(tmp_path / "bad3.yaml", tmp_path, TWO_VARIANTS, baseline="nope")
    with pytest.raises(ConfigError, match=r"baseline: 'nope' is not a variant"):
        load_experiment_config(path)
    variants = {
        "a": {"model": {"name": "mf"}},
        "b": {"model": {"name": "mf"}, "set": ["eval.ks=[5]"]},
    }
    path = write_experiment(tmp_path / "bad4.yaml", tmp_path, variants, baseline="a")
    with pytest.raises(ConfigError, match=r"variants 'a' and 'b' differ in eval.ks"):
        Experiment.from_yaml(path)
    path = write_experiment(
        tmp_path / "bad5.yaml", tmp_path, {"a": {"config": "missing.yaml"}}, baseline="a"
    )
    with pytest.raises(ConfigError, match=r"missing.yaml.*not found"):
        Experiment.from_yaml(path)


def test_cli_experiment_prints_the_tables(finished_experiment, capsys, tmp_path):
    exp, result, path = finished_experiment
    assert (
        evaluate_cli.main(["experiment", str(path), "--quiet"]) == 0
    )  # everything finished: nothing to train
    printed = capsys.readouterr().out
    assert result.table() in printed
    assert "p corrected" in printed and "MF-BPR" not in printed
    # a bad file is a one-line error with exit status 2
    assert evaluate_cli.main(["experiment", str(tmp_path / "nope.yaml"), "--quiet"]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_example_experiment_config_resolves(tmp_path):

    exp = Experiment.from_yaml(
        REPO / "configs" / "experiments" / "ml-small-3x3.yaml",
        experiment_overrides=[f"out_dir={tmp_path}"],
    )
    assert len(exp.variants) == 3 and exp.config.seeds == [2024, 2025, 2026]
    assert exp.config.baseline_name == "mf"


def test_reference_of_experiment_and_search_files_is_in_sync():
    from graphrec.experiment.reference import reference

    committed = (REPO / "configs" / "experiments" / "README.md").read_text(encoding="utf-8")
    assert committed == reference(), (
        "configs/experiments/README.md is stale: run `python -m graphrec.experiment > configs/experiments/README.md`"
    )


def test_shipped_search_configs_load():
    from graphrec.experiment.search import base_tree, load_search_config, trial_config

    paths = sorted((REPO / "configs" / "search").glob("*.yaml"))
    assert paths, "no shipped search configs"
    for path in paths:
        config = load_search_config(path)
        tree = base_tree(config)
        for (
            entry
        ) in config.enqueue:  # the enqueued (paper / default) settings are valid run configs
            trial_config(tree, entry, config.directory, config.metric or "recall@20")


def test_the_split_is_given_or_loaded_once_and_kept_across_set_values(tmp_path, monkeypatch):
    from graphrec.experiment import experiment as experiment_mod

    loads = []
    monkeypatch.setattr(
        experiment_mod, "load_data", lambda config: loads.append(config) or object()
    )
    path = write_experiment(tmp_path / "exp.yaml", tmp_path / "out", TWO_VARIANTS, seeds=[1])
    given = object()
    exp = Experiment(load_experiment_config(path), data=given)
    assert exp.load_data() is given and loads == []
    # a value known only at run time (what the pipeline sets): the run configs change, the split stays
    exp.set_variant_values({"variants.lightgcn.train.learning_rate": 0.02})
    assert exp.run_configs["lightgcn"][1].train.learning_rate == 0.02
    assert exp.run_configs["mf"][1].train.learning_rate == 0.005
    assert exp.load_data() is given and loads == []
    # a value that changes the split drops the loaded one; the new split is loaded once
    exp.set_variant_values(
        {f"variants.{v}.data.k_core": 2 for v in TWO_VARIANTS}  # every variant: one split
    )
    first = exp.load_data()
    assert first is not given and exp.load_data() is first
    assert [c.k_core for c in loads] == [2]
    with pytest.raises(ConfigError, match="not a key of a variant"):
        exp.set_variant_values({"variants.nope.model.kg": "x"})
    with pytest.raises(ConfigError, match="not a key of a variant"):
        exp.set_variant_values({"model.kg": "x"})


def test_a_row_selected_on_validation_is_the_best_validated_candidate(
    finished_experiment, tmp_path
):
    """`select` adds a row with the runs of the candidate whose mean validation metric is best;
    the test split never takes part in the choice."""
    exp, _, path = finished_experiment
    tree = yaml.safe_load(path.read_text())
    tree["select"] = {"name": "best", "label": "best", "among": ["mf", "lightgcn"]}
    selecting = Experiment(tree)
    result = selecting.results()  # reuses the finished runs: no training
    valid = {
        v: sum(r.results["valid"]["recall@20"] for r in result.records[v]) / 2
        for v in ("mf", "lightgcn")
    }
    chosen = max(valid, key=lambda v: valid[v])
    assert [s.name for s in result.summaries] == ["mf", "lightgcn", "best"]
    assert result.labels["best"] == f"best = {exp.config.label(chosen)}"
    rows = {s.name: s for s in result.summaries}
    assert rows["best"].metrics["recall@20"].values == rows[chosen].metrics["recall@20"].values
    assert any(c.variant == "best" for c in result.comparisons)
    assert "best = " in result.table()

    # a candidate's test figures do not move the choice: swap valid and test of the loser
    other = "mf" if chosen == "lightgcn" else "lightgcn"
    for record in result.records[other]:
        record.results = {**record.results, "test": {"recall@20": 1.0}}
    assert select_on_validation(selecting.config.select, result.records) == chosen


def test_a_selection_names_existing_variants(finished_experiment):
    _, _, path = finished_experiment
    tree = yaml.safe_load(path.read_text())
    tree["select"] = {"among": ["mf", "nope"]}
    with pytest.raises(ConfigError, match="select.among: 'nope' not a variant"):
        Experiment(tree)
    tree["select"] = {"name": "mf", "among": ["mf"]}
    with pytest.raises(ConfigError, match="already a variant"):
        Experiment(tree)
    tree["select"] = {"among": ["mf"], "metric": "recall@50"}  # not evaluated (ks 10, 20)
    with pytest.raises(ConfigError, match="select.metric: 'recall@50' is not among"):
        Experiment(tree)
