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
    first, second = text_models.Store(tmp_path / "tm"), text_models.Store(tmp_path / "tm")
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
