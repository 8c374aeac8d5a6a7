"""A fast sample of the kill -9 suite of ``benchmarks/robustness.py`` (one killed run each)."""

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _robustness():
    spec = importlib.util.spec_from_file_location(
        "robustness_bench", REPO / "benchmarks" / "robustness.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_killed_training_ends_identical_to_an_uninterrupted_one(tmp_path):
    result = _robustness().kill_training(runs=1, seed=3, work=tmp_path, epochs=4, max_kills=2)
    assert result["problems"] == [] and result["identical_runs"] == 1 and result["kills"] >= 1


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_killed_kg_build_ends_identical_and_repeats_at_most_one_call_per_kill(tmp_path):
    result = _robustness().kill_kg_build(runs=1, seed=3, work=tmp_path, n_items=20, max_kills=2)
    assert result["problems"] == [] and result["identical_runs"] == 1 and result["kills"] >= 1
    assert result["repeated_calls"] <= result["kills"]


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_killed_augmentation_run_ends_identical_and_repeats_at_most_one_call_per_kill(tmp_path):
    result = _robustness().kill_augmentation(runs=1, seed=3, work=tmp_path, n_users=12, max_kills=2)
    assert result["problems"] == [] and result["identical_runs"] == 1 and result["kills"] >= 1
    assert result["repeated_calls"] <= result["kills"]
