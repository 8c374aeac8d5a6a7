"""Pipeline file: validation, path resolution, stage-output injection, seeding a stage folder."""

from pathlib import Path

import pytest

from graphrec.errors import ConfigError
from graphrec.pipeline import build_experiment, inject, load_pipeline_config
from graphrec.pipeline.stages import seed_folder

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "configs" / "pipeline" / "ml-latest-small-tmdb.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_pipeline_injects_stage_outputs_into_its_variants(tmp_path):
    config = load_pipeline_config(SHIPPED, [f"out_dir={tmp_path}"])
    kg_dir, edges = tmp_path / "kg" / "graphrec", tmp_path / "edges.jsonl"
    experiment = build_experiment(config)
    inject(experiment, config.inject.kg, kg_dir)
    inject(experiment, config.inject.augmentation, edges)
    seed = experiment.config.seeds[0]
    runs = {name: configs[seed] for name, configs in experiment.run_configs.items()}
    assert runs["kg"].model.kg == str(kg_dir.resolve())
    assert runs["full"].model.backbone.kg == str(kg_dir.resolve())
    assert runs["full"].train.augmentation.path == str(edges.resolve())
    # variants that consume nothing are untouched, and every run lives under the pipeline's folder
    assert runs["lightgcn"].train.augmentation.path is None
    assert all(Path(run.run_dir).is_relative_to(tmp_path / config.name) for run in runs.values())


def test_relative_paths_resolve_from_the_pipeline_file():
    config = load_pipeline_config(SHIPPED)
    assert (
        config.resolve(config.experiment)
        == SHIPPED.parent / "../experiments/pipeline-ml-small.yaml"
    )
    assert config.resolve(config.experiment).is_file()


def test_injecting_into_a_disabled_stage_is_an_error(tmp_path):
    path = write(
        tmp_path, "experiment: x.yaml\nkg: {enabled: false}\ninject: {kg: [variants.kg.model.kg]}\n"
    )
    with pytest.raises(ConfigError, match="kg stage is disabled"):
        load_pipeline_config(path)


def test_inject_keys_must_name_a_variant_key(tmp_path):
    path = write(tmp_path, "experiment: x.yaml\ninject: {kg: [model.kg]}\n")
    with pytest.raises(ConfigError, match="not an experiment variant key"):
        load_pipeline_config(path)


def test_unknown_keys_are_named(tmp_path):
    path = write(tmp_path, "experiment: x.yaml\nkg: {shema: films}\n")
    with pytest.raises(ConfigError, match=r"kg\.shema"):
        load_pipeline_config(path)


def test_seed_folder_copies_only_what_the_stage_lacks(tmp_path):
    seed, target = tmp_path / "seed", tmp_path / "stage"
    (seed / "sub").mkdir(parents=True)
    (seed / "journal.jsonl").write_text("seeded\n")
    (seed / "sub" / "cache.txt").write_text("cached\n")
    target.mkdir()
    (target / "journal.jsonl").write_text("own progress\n")
    assert seed_folder(seed, target) == 1
    assert (target / "journal.jsonl").read_text() == "own progress\n"  # never overwritten
    assert (target / "sub" / "cache.txt").read_text() == "cached\n"
    with pytest.raises(ConfigError, match="not a folder"):
        seed_folder(tmp_path / "missing", target)


def test_injecting_keeps_one_experiment_and_its_loaded_split(tmp_path):
    config = load_pipeline_config(SHIPPED, [f"out_dir={tmp_path}"])
    split = object()  # stands for the loaded split: it must survive the stage outputs being set
    experiment = build_experiment(config, data=split)
    before = experiment.run_configs["kg"][experiment.config.seeds[0]].model.kg
    inject(experiment, config.inject.kg, tmp_path / "kg" / "graphrec")
    after = experiment.run_configs["kg"][experiment.config.seeds[0]].model.kg
    assert before == "dataset" and after == str((tmp_path / "kg" / "graphrec").resolve())
    assert experiment.load_data() is split
    inject(experiment, [], tmp_path / "unused")  # a stage no variant consumes changes nothing
    assert experiment.run_configs["kg"][experiment.config.seeds[0]].model.kg == after
