"""The knowledge-aware benchmark runs end to end from its one command (tiny settings)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphrec.datasets import load

REPO = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str) -> subprocess.CompletedProcess:
    """``python benchmarks/<script> args...`` from the repository root; fails the test on a non-zero exit."""
    command = [sys.executable, str(REPO / "benchmarks" / script), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)


def test_kg_models_benchmark_trains_compares_and_times_every_arm(tmp_path):
    out = tmp_path / "kg_models"
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "kg_models.py"),
        "--datasets",
        "ml-latest-small-tmdb",
        "--arms",
        "lightgcn",
        "kglightgcn-gold",
        "--seeds",
        "1",
        "--set",
        "train.epochs=2",
        "--set",
        "train.eval_every=1",
        "--set",
        "model.embedding_dim=8",
        "--set",
        "train.num_threads=1",
        "--time-epochs",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--out",
        str(out),
        "--quiet",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    report = json.loads(out.with_suffix(".json").read_text())
    block = report["datasets"]["ml-latest-small-tmdb"]
    assert set(block["arms"]) == {"lightgcn", "kglightgcn-gold"}
    kg = block["arms"]["kglightgcn-gold"]
    assert 0.0 < kg["summary"]["recall@20"]["mean"] <= 1.0
    assert 0.0 <= kg["vs_lightgcn"]["pooled"]["recall@20"]["p_wilcoxon"] <= 1.0
    assert set(kg["seeds"][0]["relation_weights"]) >= {"genre", "starring", "directed_by"}
    assert block["kg"]["kglightgcn-gold"]["triples"] > 10_000
    assert all(
        block["epoch_timing"][arm]["seconds_per_epoch"] > 0
        for arm in ("lightgcn", "kglightgcn-gold")
    )
    table = out.with_suffix(".md").read_text()
    assert "| kglightgcn-gold (1) |" in table and "ΔR@20" in table
    # a second call with --report-only trains nothing and keeps the timings
    again = subprocess.run(
        [
            *command[:2],
            "--datasets",
            "ml-latest-small-tmdb",
            "--arms",
            "lightgcn",
            "kglightgcn-gold",
            "--seeds",
            "1",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--out",
            str(tmp_path / "again"),
            "--report-only",
            "--set",
            "train.epochs=2",
            "--set",
            "train.eval_every=1",
            "--set",
            "model.embedding_dim=8",
            "--set",
            "train.num_threads=1",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert "not finished" not in again.stdout
    assert json.loads((tmp_path / "again.json").read_text())["datasets"]["ml-latest-small-tmdb"][
        "epoch_timing"
    ]


def test_reproduce_rlmrec_runs_on_the_yelp_split(tmp_path):
    """``--dataset rlmrec-yelp`` takes configs/rlmrec-yelp/, the paper's Yelp columns and a config check."""
    import pytest

    script = str(REPO / "benchmarks" / "reproduce_rlmrec.py")
    # a config of the other split is refused before any data is read
    wrong = subprocess.run(
        [
            sys.executable,
            script,
            "--dataset",
            "rlmrec-yelp",
            "--config",
            str(REPO / "configs" / "rlmrec-amazon-book" / "lightgcn.yaml"),
            "--runs-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "wrong"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert wrong.returncode == 2 and "not on --dataset rlmrec-yelp" in wrong.stderr
    try:
        load("rlmrec-yelp")
    except Exception as error:  # noqa: BLE001 - the split lives outside the repository
        pytest.skip(f"rlmrec-yelp not available: {error}")
    out = tmp_path / "yelp"
    subprocess.run(
        [
            sys.executable,
            script,
            "--dataset",
            "rlmrec-yelp",
            "--seeds",
            "1",
            "--set",
            "train.epochs=2",
            "--set",
            "train.eval_every=1",
            "--set",
            "model.embedding_dim=8",
            "--set",
            "train.num_threads=1",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--out",
            str(out),
            "--quiet",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["dataset"] == "rlmrec-yelp" and report["statistics"]["users"] == 11091
    assert (
        report["summary"]["recall@20"]["paper"] == 0.1157
        and report["summary"]["ndcg@20"]["paper"] == 0.0733
    )
    assert report["config"]["data"]["dataset"] == "rlmrec-yelp"
    assert out.with_suffix(".md").read_text().startswith("| LightGCN on rlmrec-yelp |")


def run_text_models(tmp_path, arms, parts=("warm", "cold"), seeds=2):
    out = tmp_path / "tm"
    args = [
        "--datasets",
        "ml-latest-small-tmdb",
        "--arms",
        *arms,
        "--parts",
        *parts,
        "--seeds",
        str(seeds),
        "--max-epochs",
        "1",
        "--out",
        str(out),
    ]
    return args, out, run_benchmark("text_models.py", *args)


def test_text_models_benchmark_compares_cold_start_and_buckets(tmp_path):
    args, out, _ = run_text_models(tmp_path, ["popularity", "ease", "text_ease"])
    report = json.loads(out.with_suffix(".json").read_text())
    block = report["datasets"]["ml-latest-small-tmdb"]
    assert len(block["search"]["ease"]) == 4 and len(block["search"]["popularity"]) == 1
    assert set(block["seeds"]["ease"]) == {"0"}  # closed form: one fit stands for every seed
    assert set(block["cold"]["text_ease"]) == {"0", "1"} and "ease" not in block["cold"]
    for cell in block["cold"]["text_ease"].values():  # its cold ridge chosen on validation
        assert cell["cold_l2"] in (1.0, 3.0, 10.0, 30.0)
        assert len(cell["cold_l2_valid_recall@20"]) == 4
        assert cell["cold_l2_validation_splits"] == [123, 124, 125]
        assert cell["cold_l2_valid_recall@20"][f"{cell['cold_l2']:g}"] == max(
            cell["cold_l2_valid_recall@20"].values()
        )
    assert len(block["buckets"]["text_ease"]) == 5
    table = out.with_suffix(".md").read_text()
    assert "| text-EASE | 1 |" in table and "p (Holm)" in table and "× text item-kNN" in table
    assert (
        (tmp_path / "tm_ml-latest-small-tmdb_buckets.svg")
        .read_text()
        .lstrip()
        .startswith(("<?xml", "<svg"))
    )
    # resumable: a second run fits nothing and keeps the same cells
    again = run_benchmark("text_models.py", *args)
    assert "test R@20 " not in again.stdout
    assert json.loads(out.with_suffix(".json").read_text())["datasets"] == report["datasets"]


def test_text_ease_ablations_start_from_the_settings_text_models_chose(tmp_path):
    _, tm, _ = run_text_models(tmp_path, ["ease", "text_ease"], parts=("warm",), seeds=1)
    chosen = json.loads(tm.with_suffix(".json").read_text())["datasets"]["ml-latest-small-tmdb"]
    out = tmp_path / "ablations"
    run_benchmark(
        "text_ease_ablations.py",
        "--datasets",
        "ml-latest-small-tmdb",
        "--sections",
        "popularity_ridge",
        "cold",
        "--text-models",
        str(tm.with_suffix(".json")),
        "--out",
        str(out),
    )
    block = json.loads(out.with_suffix(".json").read_text())["datasets"]["ml-latest-small-tmdb"]
    # without the extra ridge the ablation's B is the chosen model's own: same validation figures
    for arm, row in (("ease", "EASE, d 0"), ("text_ease", "text-EASE, d 0")):
        valid = chosen["seeds"][arm]["0"]["valid"]["recall@20"]
        assert block["popularity_ridge"][row]["recall@20"] == pytest.approx(valid, abs=1e-6)
    assert block["popularity_ridge"]["EASE, d 10"] != block["popularity_ridge"]["EASE, d 0"]
    cold = block["cold"]["neighbours, kernel ridge μ 10"]
    assert len(cold["x_knn"]) == 2 and all(r > 0 for r in cold["x_knn"])
    assert "fusion" not in block and "| text-EASE, d 0 |" in out.with_suffix(".md").read_text()


@pytest.mark.slow
def test_text_models_benchmark_trains_seeds_of_a_text_native_model(tmp_path):
    _, out, _ = run_text_models(tmp_path, ["alpharec"])
    block = json.loads(out.with_suffix(".json").read_text())["datasets"]["ml-latest-small-tmdb"]
    assert len(block["search"]["alpharec"]) == 4 and set(block["seeds"]["alpharec"]) == {"0", "1"}
    assert set(block["cold"]["alpharec"]) == {"0", "1"}


def test_new_items_benchmark_scores_held_out_items_from_their_text(tmp_path):
    out = tmp_path / "new_items.json"
    run_benchmark("new_items.py", "--held-out", "20", "--threads", "1", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["held_out"] == 20 and result["request_s_1_item"] > 0
    assert result["auc_mean"] > 0.55  # the text prior places unseen items better than chance
