"""The Python API's options, errors and the serving bundle."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from inference_helpers import train_tiny

from graphrec.data.bundle import bundle_dir
from graphrec.errors import CheckpointError
from graphrec.inference import InvalidRequestError, UnknownIdError, load_recommender


@pytest.fixture(scope="module")
def ease_run(tmp_path_factory, tiny_data):
    return train_tiny(tmp_path_factory.mktemp("runs"), "ease", tiny_data)


def test_candidates_filter_and_seen_items(ease_run, tiny_data):
    rec = load_recommender(ease_run)
    user = tiny_data.user_ids[0]
    seen = set(tiny_data.item_ids[tiny_data.train[0].indices])
    candidates = [str(i) for i in tiny_data.item_ids[:10]]
    lst = rec.recommend([user], k=20, candidates=candidates)[0]
    assert set(lst.items) == set(candidates) - seen  # fewer than k allowed: the list is shorter
    with_seen = rec.recommend([user], k=40, exclude_seen=False)[0]
    assert seen <= set(with_seen.items)
    kept = rec.recommend([user], k=40, filter=lambda item: item.endswith("1"))[0]
    assert kept.items and all(i.endswith("1") for i in kept.items)


def test_bad_requests_are_clear_errors(ease_run):
    rec = load_recommender(ease_run)
    for k in (0, -1, 2.5, True):
        with pytest.raises(InvalidRequestError, match="k must be a positive integer"):
            rec.recommend(["u0"], k=k)
    with pytest.raises(UnknownIdError, match="unknown item id"):
        rec.recommend_for_items(["i0", "no-such-item"])
    assert rec.recommend_for_items(["i0", "no-such-item"], unknown_items="ignore").items
    assert rec.recommend_for_items([]).fallback == "popularity"


def test_blocks_bound_memory_and_agree(ease_run, tiny_data):
    whole = load_recommender(ease_run)
    tiny_blocks = load_recommender(ease_run, memory_mb=1e-4)  # one user per block
    assert tiny_blocks.block_users == 1
    users = list(tiny_data.user_ids)
    assert [r.items for r in whole.recommend(users, k=7)] == [
        r.items for r in tiny_blocks.recommend(users, k=7)
    ]


def test_bundle_from_another_run_is_refused(tmp_path, ease_run, tiny_data):
    from graphrec.data.synthetic import random_interactions

    other = train_tiny(
        tmp_path, "ease", random_interactions(n_users=30, n_items=40, per_user=8, seed=2)
    )
    for name in ("ids.npz", "train.npz", "side.json", "manifest.json"):
        (bundle_dir(other) / name).write_bytes((bundle_dir(ease_run) / name).read_bytes())
    with pytest.raises(CheckpointError, match="fingerprints differ"):
        load_recommender(other)


def test_incompatible_bundle_version_and_missing_bundle(tmp_path, tiny_data):
    run = train_tiny(tmp_path, "popularity", tiny_data)
    manifest = bundle_dir(run) / "manifest.json"
    record = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**record, "version": 99}))
    with pytest.raises(CheckpointError, match="incompatible graphrec version"):
        load_recommender(run)
    manifest.unlink()
    with pytest.raises(CheckpointError, match="no serving bundle"):
        load_recommender(run, dataset_fallback=False)


def test_old_run_without_bundle_falls_back_to_its_dataset(tmp_path, monkeypatch, tiny_data):
    run = train_tiny(tmp_path, "popularity", tiny_data)
    (bundle_dir(run) / "manifest.json").unlink()
    monkeypatch.setattr("graphrec.training.run.load_data", lambda config: tiny_data)
    rec = load_recommender(run)
    assert rec.data is tiny_data and len(rec.recommend(["u1"], k=3)[0].items) == 3


def test_bundle_round_trip_keeps_ids_matrix_and_side_information(tmp_path, clusters):
    from graphrec.data import data_fingerprint
    from graphrec.data.bundle import load_bundle, save_bundle

    save_bundle(tmp_path, clusters, data_fingerprint(clusters))
    data, manifest = load_bundle(tmp_path)
    assert list(data.user_ids) == list(clusters.user_ids) and list(data.item_ids) == list(
        clusters.item_ids
    )
    assert (data.train != clusters.train).nnz == 0
    assert list(data.item_info["title"]) == list(clusters.item_info["title"])
    assert data.kg.triples.equals(clusters.kg.triples)
    assert manifest["data_fingerprint"] == data_fingerprint(clusters)
    assert np.all(
        np.load(tmp_path / "serving" / "ids.npz")["item_popularity"] == clusters.item_popularity()
    )
    assert sp.issparse(data.test) and data.test.nnz == 0
