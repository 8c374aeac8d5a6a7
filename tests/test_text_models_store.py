"""benchmarks/text_models.py: runs sharing one store lose no cells; the KG arms read the
dataset's LLM KG or say how to build it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def text_models():
    spec = importlib.util.spec_from_file_location(
        "text_models_under_test", REPO / "benchmarks" / "text_models.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_two_runs_sharing_a_store_keep_each_others_cells(tmp_path, text_models):
    first = text_models.Store(tmp_path / "tm", arms=["alpharec"])
    second = text_models.Store(tmp_path / "tm", arms=["text_ease_kg"])
    runs = first.block("films")["seeds"].setdefault("alpharec", {})  # held across saves
    runs["0"] = {"test": {"recall@20": 0.2}}
    first.per_user["films/alpharec/0/recall@20"] = np.ones(3)
    first.save()
    second.block("films")["search"].setdefault("text_ease_kg", {})["0"] = {"valid": 0.3}
    second.per_user["films/text_ease_kg/0/recall@20"] = np.zeros(3)
    second.save()  # written after the first: it must not drop the first run's cell
    runs["1"] = {"test": {"recall@20": 0.21}}  # the first run goes on with the dict it holds
    first.save()
    on_disk = json.loads((tmp_path / "tm.json").read_text())["datasets"]["films"]
    assert set(on_disk["seeds"]["alpharec"]) == {"0", "1"}
    assert on_disk["search"]["text_ease_kg"] == {"0": {"valid": 0.3}}
    users = np.load(tmp_path / "tm_per_user.npz")
    assert {"films/alpharec/0/recall@20", "films/text_ease_kg/0/recall@20"} <= set(users)
    # an arm reset by one run (its grid changed) is gone from the file, not revived from it
    second.drop("films", "seeds", "alpharec")
    second.save()
    assert (
        "alpharec"
        not in json.loads((tmp_path / "tm.json").read_text())["datasets"]["films"]["seeds"]
    )


def test_a_run_never_writes_back_stale_cells_of_an_arm_it_does_not_run(tmp_path, text_models):
    """A long run read the file before another run recomputed an arm's cells: its next save
    must keep the new cells, not its own stale copy."""
    path = tmp_path / "tm"
    seed = text_models.Store(path, arms=["text_ease"])
    seed.block("films")["cold"]["text_ease"] = {"0": {"cold_l2": None, "recall@20": 0.30}}
    seed.per_user["films/text_ease/0/recall@20"] = np.zeros(2)
    seed.save()
    slow = text_models.Store(path, arms=["alpharec"])  # holds the old text_ease cells from here on
    rerun = text_models.Store(path, arms=["text_ease"])
    rerun.block("films")["cold"]["text_ease"]["0"] = {"cold_l2": 1.0, "recall@20": 0.33}
    rerun.per_user["films/text_ease/0/recall@20"] = np.ones(2)
    rerun.save()
    slow.block("films")["cold"].setdefault("alpharec", {})["0"] = {"recall@20": 0.25}
    slow.save()
    cold = json.loads((tmp_path / "tm.json").read_text())["datasets"]["films"]["cold"]
    assert cold["text_ease"]["0"] == {"cold_l2": 1.0, "recall@20": 0.33}
    assert cold["alpharec"]["0"] == {"recall@20": 0.25}
    assert np.load(tmp_path / "tm_per_user.npz")["films/text_ease/0/recall@20"].tolist() == [1, 1]
    assert slow.report["datasets"]["films"]["cold"]["text_ease"]["0"]["cold_l2"] == 1.0


def test_kg_arm_reads_the_datasets_kg_or_says_how_to_build_it(tmp_path, text_models, monkeypatch):
    section, _ = text_models.ARMS["text_ease_kg"][1][0]
    assert section["item_text"] == "catalogue"
    monkeypatch.setitem(text_models.KG_PATHS, "amazon18-scientific", tmp_path / "none")
    with pytest.raises(SystemExit, match="no LLM KG at .*none.*--kg amazon18-scientific=PATH"):
        text_models.dataset_section(section, "amazon18-scientific")
    export = tmp_path / "graphrec"
    export.mkdir()
    (export / "kg_arrays.npz").write_bytes(b"")
    monkeypatch.setitem(text_models.KG_PATHS, "amazon18-scientific", export)
    assert text_models.dataset_section(section, "amazon18-scientific")["kg"] == str(export)
    plain, _ = text_models.ARMS["text_ease"][1][0]
    assert text_models.dataset_section(plain, "amazon18-scientific") == plain


def test_the_kg_contribution_pairs_each_kg_arm_with_its_catalogue_arm(tmp_path, text_models):
    store = text_models.Store(tmp_path / "tm", arms=[])
    block = store.block("films")
    users = np.arange(200)
    rng = np.random.default_rng(0)
    without = rng.random(200)
    per_arm = {
        "text_ease_catalogue": without,
        "text_ease_kg": without + 0.05,  # the KG helps every user a little
        "alpharec_kg": without,  # its catalogue arm was not run: no row
    }
    for arm, values in per_arm.items():
        block["search"][arm] = {str(i): {"valid": {"recall@20": 0.3}} for i in range(4)}
        block["seeds"][arm] = {
            "0": {"test": {"recall@20": float(values.mean())}, "train_seconds": 1.0}
        }
        for metric in ("recall@20", "ndcg@20"):
            store.per_user[f"films/{arm}/0/{metric}"] = values
        store.per_user[f"films/{arm}/0/users"] = users
    lines = text_models.knowledge_rows(store, "films", text_models.arm_rows(block))
    rows = [line for line in lines if line.startswith("| text-EASE") or "AlphaRec" in line]
    assert len(rows) == 2 and all("catalogue text + LLM KG facts" in row for row in rows)
    expected = without.mean(), without.mean() + 0.05
    assert f"| {expected[0]:.4f} | {expected[1]:.4f} |" in rows[0]
    assert 0 < float(rows[0].split("|")[-2]) < 1e-10  # Holm-corrected p of a consistent gain
