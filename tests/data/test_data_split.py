"""Splitters, InteractionData construction and saved splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from data_helpers import synthetic

from graphrec.data.split import (
    build_interaction_data,
    load_split,
    save_split,
    sort_ids,
    split_counts,
    split_interactions,
    split_leave_one_out,
    split_random,
    split_temporal_global,
    split_temporal_user,
)
from graphrec.errors import DataFormatError

PAIR = ["user_id", "item_id"]


def pairs(df):
    return set(map(tuple, df[PAIR].to_numpy().tolist()))


def check_partition(original, frames):
    """Splits are disjoint, cover the input, and every user keeps a train item."""
    seen = set()
    for part in frames.values():
        assert not (pairs(part) & seen)
        seen |= pairs(part)
    assert seen == pairs(original)
    assert sum(len(f) for f in frames.values()) == len(original)
    assert set(frames["train"]["user_id"]) == set(original["user_id"])


@pytest.mark.parametrize(
    "n, expected",
    [
        (1, [1, 0, 0]),
        (2, [1, 0, 1]),
        (3, [1, 1, 1]),
        (5, [3, 1, 1]),
        (10, [8, 1, 1]),
        (15, [13, 1, 1]),
        (21, [17, 2, 2]),
    ],
)
def test_split_counts_follow_recbole(n, expected):
    assert split_counts(np.array([n]), (0.8, 0.1, 0.1))[0].tolist() == expected


def test_random_split_deterministic_and_order_free(frame):
    a = split_random(frame, (0.8, 0.1, 0.1), seed=7)
    b = split_random(frame.sample(frac=1.0, random_state=1), "8:1:1", seed=7)
    c = split_random(frame, (8, 1, 1), seed=8)
    for name in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(a[name], b[name])
    assert pairs(a["test"]) != pairs(c["test"])
    check_partition(frame, a)


def test_random_split_ratios_per_user():
    df = synthetic(n_users=30, n_items=200, per_user=(20, 20), seed=4)
    frames = split_random(df, (0.7, 0.1, 0.2), seed=0)
    for name, share in (("train", 14), ("valid", 2), ("test", 4)):
        assert frames[name].groupby("user_id").size().eq(share).all()


def test_two_ratios_give_no_valid(frame):
    frames = split_random(frame, (0.8, 0.2), seed=1)
    assert set(frames) == {"train", "test"}
    check_partition(frame, frames)


def test_temporal_user_order(frame):
    frames = split_temporal_user(frame, (0.8, 0.1, 0.1))
    check_partition(frame, frames)
    last_train = frames["train"].groupby("user_id")["timestamp"].max()
    for name in ("valid", "test"):
        first = frames[name].groupby("user_id")["timestamp"].min()
        assert (last_train.loc[first.index] <= first).all()
    last_valid = frames["valid"].groupby("user_id")["timestamp"].max()
    first_test = frames["test"].groupby("user_id")["timestamp"].min()
    common = last_valid.index.intersection(first_test.index)
    assert (last_valid.loc[common] <= first_test.loc[common]).all()


def test_temporal_global_cut():
    df = synthetic(n_users=50, n_items=100, per_user=(5, 40), seed=5)
    frames = split_temporal_global(df, (0.8, 0.1, 0.1))
    assert frames["train"]["timestamp"].max() < frames["valid"]["timestamp"].min()
    assert frames["valid"]["timestamp"].max() < frames["test"]["timestamp"].min()
    assert sum(len(f) for f in frames.values()) == len(df)
    assert abs(len(frames["train"]) / len(df) - 0.8) < 0.02
    assert abs(len(frames["test"]) / len(df) - 0.1) < 0.02


@pytest.mark.parametrize("order", ["time", "random"])
def test_leave_one_out(frame, order):
    frames = split_leave_one_out(frame, order=order, seed=3)
    check_partition(frame, frames)
    sizes = frame.groupby("user_id").size()
    test_sizes = frames["test"].groupby("user_id").size().reindex(sizes.index, fill_value=0)
    valid_sizes = frames["valid"].groupby("user_id").size().reindex(sizes.index, fill_value=0)
    assert (test_sizes == (sizes >= 2)).all() and (valid_sizes == (sizes >= 3)).all()
    if order == "time":
        latest = frames["train"].groupby("user_id")["timestamp"].max()
        assert (
            latest.loc[frames["test"]["user_id"]].to_numpy()
            <= frames["test"]["timestamp"].to_numpy()
        ).all()
    else:
        again = split_leave_one_out(frame.iloc[::-1], order="random", seed=3)
        pd.testing.assert_frame_equal(frames["test"], again["test"])


def test_split_interactions_dispatch_and_aliases(frame):
    frames, info = split_interactions(frame, "loo", ratios=(0.8, 0.2))
    assert set(frames) == {"train", "test"} and info["method"] == "leave_one_out"
    frames, info = split_interactions(frame, "temporal")
    assert info["method"] == "temporal_global"
    assert info["cut_timestamps"] == [
        frames["valid"]["timestamp"].min(),
        frames["test"]["timestamp"].min(),
    ]
    with pytest.raises(ValueError, match="unknown split method"):
        split_interactions(frame, "nope")
    with pytest.raises(DataFormatError, match="timestamp"):
        split_interactions(frame.drop(columns="timestamp"), "temporal_user")


# ------------------------------------------------------------------ build
def simple_frames():
    return {
        "train": pd.DataFrame({"user_id": ["2", "10", "10"], "item_id": ["a", "a", "b"]}),
        "valid": pd.DataFrame({"user_id": ["2"], "item_id": ["c"]}),
        "test": pd.DataFrame({"user_id": ["10", "2"], "item_id": ["d", "b"]}),
    }


def test_build_id_maps_cover_all_splits():
    data = build_interaction_data(simple_frames(), "toy")
    assert data.user_ids.tolist() == ["2", "10"]  # numeric order for numeric ids
    assert data.item_ids.tolist() == ["a", "b", "c", "d"]  # c, d only in valid/test: still mapped
    assert sp.issparse(data.train) and data.train.shape == (2, 4)
    assert data.train.toarray().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0]]
    assert data.test.toarray().tolist() == [[0, 1, 0, 0], [0, 0, 0, 1]]
    assert data.meta["id_order"] == {"users": "numeric", "items": "lexicographic"}


def test_sort_ids():
    assert sort_ids(["10", "9", "09"])[0].tolist() == ["09", "9", "10"]
    assert sort_ids(["b", "10", "9"])[0].tolist() == ["10", "9", "b"]


def test_unseen_users():
    frames = simple_frames()
    frames["test"] = pd.concat(
        [frames["test"], pd.DataFrame({"user_id": ["x", "x"], "item_id": ["a", "e"]})]
    )
    with pytest.raises(DataFormatError, match=r"'test'.*1 user\(s\).*'x'.*unseen_users='drop'"):
        build_interaction_data(frames, "toy")
    data = build_interaction_data(frames, "toy", unseen_users="drop")
    assert data.meta["unseen_users_dropped"] == 1 and data.meta["unseen_interactions_dropped"] == 2
    assert "x" not in data.user_ids and "e" not in data.item_ids
    kept = build_interaction_data(frames, "toy", unseen_users="keep")
    assert kept.train[kept.user_index(["x"])[0]].nnz == 0 and kept.test.nnz == 4


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_empty_split_is_named(split):
    frames = simple_frames()
    frames[split] = frames[split].iloc[:0]
    with pytest.raises(DataFormatError, match=f"split '{split}' of dataset 'toy' is empty"):
        build_interaction_data(frames, "toy")


def test_missing_test_split():
    frames = simple_frames()
    del frames["test"]
    with pytest.raises(DataFormatError, match="no 'test' split"):
        build_interaction_data(frames, "toy")


def test_item_info_alignment_and_values():
    info = pd.DataFrame(
        {"item_id": ["d", "a", "zzz"], "title": ["D", "A", "unused"], "year": [2001.0, 1999.0, 0.0]}
    )
    frames = simple_frames()
    frames["train"]["rating"] = [4.0, 2.5, 5.0]
    frames["valid"]["rating"] = [1.0]
    frames["test"]["rating"] = [3.0, 3.0]
    data = build_interaction_data(frames, "toy", item_info=info, value_col="rating")
    assert data.item_info["title"].tolist() == ["A", "", "", "D"]
    assert data.item_info["year"].iloc[3] == 2001.0 and np.isnan(data.item_info["year"].iloc[1])
    assert list(data.item_info.index) == [0, 1, 2, 3] and data.meta["items_with_info"] == 2
    assert data.train[data.user_index(["10"])[0], data.item_index(["a"])[0]] == 2.5


# ------------------------------------------------------------- save / load
def test_save_load_round_trip(tmp_path, frame):
    frames, info = split_interactions(frame, "ratio", seed=11)
    manifest_path = save_split(
        frames,
        tmp_path / "s",
        "my data/1",
        method="ratio",
        ratios=info["ratios"],
        seed=11,
        extra={"note": 1},
    )
    assert sorted(p.name for p in manifest_path.parent.iterdir()) == [
        "my_data_1.test.inter",
        "my_data_1.train.inter",
        "my_data_1.valid.inter",
        "split.json",
    ]
    loaded, manifest = load_split(tmp_path / "s")
    assert (
        manifest["seed"] == 11
        and manifest["note"] == 1
        and manifest["counts"]["train"]["interactions"] == len(frames["train"])
    )
    for name in frames:
        pd.testing.assert_frame_equal(
            loaded[name], frames[name], check_dtype=False, check_like=True
        )
    assert loaded["train"]["timestamp"].dtype == np.float64
    head = (tmp_path / "s" / "my_data_1.train.inter").read_text().splitlines()[0]
    assert head == "user_id:token\titem_id:token\trating:float\ttimestamp:float"


def test_non_integral_floats_round_trip(tmp_path):
    frames = {
        s: pd.DataFrame(
            {"user_id": ["u"], "item_id": [s], "rating": [0.1 + 0.2], "timestamp": [1.5e9 + 0.25]}
        )
        for s in ("train", "test")
    }
    save_split(frames, tmp_path, "f")
    loaded, _ = load_split(tmp_path)
    assert (
        loaded["train"]["rating"].iloc[0] == 0.1 + 0.2
        and loaded["test"]["timestamp"].iloc[0] == 1.5e9 + 0.25
    )


def tamper_cases():
    def modify(path):
        data = bytearray(path.read_bytes())
        data[-2] = ord("9") if data[-2] != ord("9") else ord("8")
        path.write_bytes(bytes(data))

    def truncate(path):
        path.write_bytes(path.read_bytes()[:-10])

    return {
        "modified": (modify, "sha256"),
        "truncated": (truncate, "truncated"),
        "deleted": (lambda p: p.unlink(), "missing"),
    }


@pytest.mark.parametrize("case", ["modified", "truncated", "deleted"])
def test_tamper_detection(tmp_path, frame, case):
    frames, _ = split_interactions(frame, "ratio", seed=1)
    save_split(frames, tmp_path, "t")
    action, needle = tamper_cases()[case]
    target = tmp_path / "t.test.inter"
    action(target)
    with pytest.raises(DataFormatError, match=needle) as info:
        load_split(tmp_path)
    assert info.value.path == str(target)


def test_bad_manifest(tmp_path, frame):
    with pytest.raises(DataFormatError, match="no split.json"):
        load_split(tmp_path)
    save_split(split_random(frame), tmp_path, "t")
    (tmp_path / "split.json").write_text('{"format": "graphrec-split/1",\n "files": ')
    with pytest.raises(DataFormatError) as info:
        load_split(tmp_path)
    assert info.value.line == 2
    manifest = {
        "format": "graphrec-split/1",
        "files": {"train": {"file": "t.train.inter", "sha256": "0"}},
    }
    (tmp_path / "split.json").write_text(json.dumps(manifest))
    with pytest.raises(DataFormatError, match="train and test"):
        load_split(tmp_path)
