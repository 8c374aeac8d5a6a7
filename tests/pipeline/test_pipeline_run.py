"""The end-to-end pipeline on the movie data with a local OpenAI-compatible server as the LLM.

Real stages (``python -m kg build`` against a chat-completions server started here on
127.0.0.1, the shipped replayable augmentation file), a real experiment (three variants,
one seed, a few epochs), and a rerun that must make no LLM call and train nothing.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "kg"))

from chat_server import ChatServer  # noqa: E402
from fakes import fake_reply  # noqa: E402

from graphrec.pipeline import load_pipeline_config, run_pipeline  # noqa: E402

EDGES = REPO / "datasets" / "ml-latest-small-tmdb" / "augmentation" / "smollm2-135m-lightgcn.jsonl"

EXPERIMENT = """
name: tiny
seeds: [2024]
baseline: lightgcn
metrics: [recall@20, ndcg@20]
defaults:
  data: {dataset: ml-latest-small-tmdb}
  train: {epochs: 2, batch_size: 4096, learning_rate: 5.0e-3, eval_every: 1, patience: 5,
          progress: false, num_threads: 1}
  eval: {ks: [20]}
variants:
  lightgcn:
    model: {name: lightgcn, embedding_dim: 16, num_layers: 2}
  kg:
    model: {name: kglightgcn, embedding_dim: 16, num_layers: 2, kg: dataset}
  aug:
    model: {name: lightgcn, embedding_dim: 16, num_layers: 2}
    train: {augmentation: {fraction: 0.05}}
"""


@pytest.fixture
def server():
    with ChatServer(responder=fake_reply) as server:
        yield server


def test_pipeline_runs_stages_then_the_experiment_and_resumes_without_llm_calls(
    tmp_path, server, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    (tmp_path / "experiment.yaml").write_text(EXPERIMENT, encoding="utf-8")
    (tmp_path / "pipeline.yaml").write_text(
        f"""
name: e2e
out_dir: {tmp_path / 'out'}
experiment: experiment.yaml
kg:
  backend: openai
  model: fake-1
  base_url: {server.base_url}
  max_items: 12
  args: [--no-embeddings, --concurrency, '2']
augmentation:
  edges: {EDGES}
inject:
  kg: [variants.kg.model.kg]
  augmentation: [variants.aug.train.augmentation.path]
report: false
""",
        encoding="utf-8",
    )
    config = load_pipeline_config(tmp_path / "pipeline.yaml")
    outcome = run_pipeline(config, quiet=True)

    # stage 1: one extraction per selected item (12 most interacted-with training items), exported for graphrec
    calls = len(server.requests)
    assert 12 <= calls <= 12 * 4  # one call per item, or one per relation group
    arrays = np.load(outcome.kg_export / "kg_arrays.npz")
    assert len(arrays[arrays.files[0]]) > 0
    kg_run = outcome.experiment.run_configs["kg"][2024]
    assert kg_run.model.kg == str(outcome.kg_export.resolve())
    # stage 2: the shipped edge file, replayed
    assert outcome.augmentation_edges == EDGES
    assert outcome.experiment.run_configs["aug"][2024].train.augmentation.path == str(
        EDGES.resolve()
    )
    # the experiment: every variant trained and compared with the baseline
    table = outcome.result.table()
    for variant in ("lightgcn", "kg", "aug"):
        assert variant in table
        results = json.loads(
            (
                Path(outcome.experiment.run_configs[variant][2024].run_dir) / "results.json"
            ).read_text()
        )
        assert 0.0 < results["test"]["recall@20"] <= 1.0

    # a rerun resumes: the journal answers every item (0 LLM calls) and finished runs are reused
    mtime = (Path(kg_run.run_dir) / "results.json").stat().st_mtime
    again = run_pipeline(load_pipeline_config(tmp_path / "pipeline.yaml"), quiet=True)
    assert len(server.requests) == calls
    assert (Path(kg_run.run_dir) / "results.json").stat().st_mtime == mtime
    assert again.result.table() == table
    # rerun=[variant] retrains that variant only (e.g. after its settings changed), still without LLM calls
    aug_mtime = (
        (Path(outcome.experiment.run_configs["aug"][2024].run_dir) / "results.json").stat().st_mtime
    )
    run_pipeline(load_pipeline_config(tmp_path / "pipeline.yaml"), quiet=True, rerun=["kg"])
    assert len(server.requests) == calls
    assert (Path(kg_run.run_dir) / "results.json").stat().st_mtime > mtime
    assert (
        Path(outcome.experiment.run_configs["aug"][2024].run_dir) / "results.json"
    ).stat().st_mtime == aug_mtime

    # a fresh pipeline folder seeded with the first run's exported replies (what the shipped
    # pipeline ships): the KG stage rebuilds the same KG from the cache with 0 LLM calls
    import subprocess

    shipped = tmp_path / "replies.jsonl.gz"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kg",
            "cache-export",
            str(outcome.kg_export.parent),
            "--out",
            str(shipped),
        ],
        check=True,
        capture_output=True,
    )
    text = (tmp_path / "pipeline.yaml").read_text(encoding="utf-8")
    text = text.replace(str(tmp_path / "out"), str(tmp_path / "fresh")).replace(
        "  max_items: 12\n", f"  max_items: 12\n  cache: {shipped}\n"
    )
    (tmp_path / "fresh.yaml").write_text(text, encoding="utf-8")
    fresh = run_pipeline(load_pipeline_config(tmp_path / "fresh.yaml"), quiet=True)
    assert len(server.requests) == calls
    assert (fresh.kg_export / "kg_arrays.npz").read_bytes() == (
        outcome.kg_export / "kg_arrays.npz"
    ).read_bytes()


def test_pipeline_loads_its_split_once_and_hands_it_and_the_result_to_the_report(
    tmp_path, monkeypatch
):
    pytest.importorskip("matplotlib")
    from graphrec.experiment import experiment as experiment_mod
    from graphrec.reporting import inputs as inputs_mod
    from graphrec.reporting import report as report_mod

    loads = []
    real_load = experiment_mod.load_data
    monkeypatch.setattr(experiment_mod, "load_data", lambda c: loads.append(c) or real_load(c))

    def must_not_run(*args, **kwargs):
        raise AssertionError("the report read again what the pipeline handed over")

    monkeypatch.setattr(report_mod, "load_data", must_not_run)
    monkeypatch.setattr(inputs_mod, "load_experiment", must_not_run)
    (tmp_path / "experiment.yaml").write_text(
        EXPERIMENT.split("variants:")[0]
        + "variants:\n  lightgcn:\n    model: {name: lightgcn, embedding_dim: 16, num_layers: 2}\n",
        encoding="utf-8",
    )
    (tmp_path / "pipeline.yaml").write_text(
        f"name: once\nout_dir: {tmp_path / 'out'}\nexperiment: experiment.yaml\n"
        "kg: {enabled: false}\naugmentation: {enabled: false}\nreport: true\n",
        encoding="utf-8",
    )
    outcome = run_pipeline(load_pipeline_config(tmp_path / "pipeline.yaml"), quiet=True)
    assert len(loads) == 1
    page = outcome.report.read_text(encoding="utf-8")
    assert 'id="metric-at-k"' in page and "analysis failed" not in page
    assert outcome.kg is None and outcome.kg_export is None and outcome.augmentation_edges is None


@pytest.mark.parametrize(
    "missing, variant, extra",
    [
        ("rapidfuzz", "", "kg"),
        ("sentence_transformers", "  text:\n    model: {name: text_ease}\n", "text"),
    ],
)
def test_a_missing_extra_fails_before_any_work(tmp_path, monkeypatch, missing, variant, extra):
    """A plain `pip install graphrec` lacks the kg/text extras: the pipeline says which to install
    before it writes or trains anything."""
    import graphrec.optional

    real = graphrec.optional.available
    monkeypatch.setattr(graphrec.optional, "available", lambda m: m != missing and real(m))
    (tmp_path / "experiment.yaml").write_text(EXPERIMENT + variant, encoding="utf-8")
    kg = "kg: {backend: embedded}" if extra == "kg" else "kg: {enabled: false}"
    (tmp_path / "pipeline.yaml").write_text(
        f"name: deps\nout_dir: {tmp_path / 'out'}\nexperiment: experiment.yaml\n{kg}\n"
        "augmentation: {enabled: false}\nreport: false\n",
        encoding="utf-8",
    )
    with pytest.raises(graphrec.optional.MissingDependencyError, match=rf"graphrec\[{extra}\]"):
        run_pipeline(load_pipeline_config(tmp_path / "pipeline.yaml"), quiet=True)
    assert not any((tmp_path / "out").rglob("*.pt"))
