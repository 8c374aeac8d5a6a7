"""benchmarks/baselines.py: grid cells through the trainer, choice on validation, resumable."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_baselines_benchmark_chooses_on_validation_and_resumes(tmp_path):
    out = tmp_path / "baselines"
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "baselines.py"),
        "--datasets",
        "ml-latest-small-tmdb",
        "--ease-l2",
        "100",
        "2000",
        "--knn-neighbours",
        "20",
        "--knn-shrink",
        "0",
        "10",
        "--out",
        str(out),
    ]
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    report = json.loads(out.with_suffix(".json").read_text())
    cells = report["datasets"]["ml-latest-small-tmdb"]["cells"]
    assert set(cells) == {
        "popularity",
        "ease l2=100",
        "ease l2=2000",
        "itemknn neighbours=20 shrink=0",
        "itemknn neighbours=20 shrink=10",
    }
    best = max(
        (c for c in cells.values() if c["model"] == "ease"), key=lambda c: c["valid"]["recall@20"]
    )
    table = out.with_suffix(".md").read_text()
    assert f"| ml-latest-small-tmdb | EASE | l2 {best['settings']['l2']:g} | 2 |" in table
    assert f"{best['test']['ndcg@20']:.4f}" in table and "| most-popular |" in table
    # rerun: every cell is finished, nothing is fitted again
    again = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    assert (
        "valid recall@20" not in again.stdout
        and json.loads(out.with_suffix(".json").read_text())["datasets"] == report["datasets"]
    )
