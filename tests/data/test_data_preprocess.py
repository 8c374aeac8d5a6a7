"""Preprocessing: thresholds, duplicates and iterative k-core, with exact counts."""

from __future__ import annotations

import pandas as pd
import pytest
from data_helpers import synthetic

from graphrec.data.preprocess import apply_rating_threshold, deduplicate, k_core_filter, preprocess
from graphrec.errors import DataFormatError


def frame_of(rows, columns=("user_id", "item_id", "rating", "timestamp")):
    return pd.DataFrame(rows, columns=list(columns))


def test_rating_threshold_keeps_at_or_above():
    df = frame_of([("u", "a", 3.5, 1), ("u", "b", 4.0, 2), ("v", "a", 5.0, 3), ("v", "c", 1.0, 4)])
    kept, removed = apply_rating_threshold(df, 4.0)
    assert removed == 2 and kept["item_id"].tolist() == ["b", "a"]
    assert apply_rating_threshold(df, None)[1] == 0


def test_threshold_without_rating_column_is_clear():
    with pytest.raises(DataFormatError, match="rating"):
        apply_rating_threshold(frame_of([("u", "a")], ("user_id", "item_id")), 4.0)


@pytest.mark.parametrize(
    "keep, expected, removed",
    [
        (
            "first",
            [("u", "a", 2.0), ("v", "a", 5.0)],
            2,
        ),  # earliest by timestamp, not by file order
        ("last", [("u", "a", 4.0), ("v", "a", 5.0)], 2),
        ("drop", [("v", "a", 5.0)], 3),
        ("keep", [("u", "a", 1.0), ("u", "a", 2.0), ("u", "a", 4.0), ("v", "a", 5.0)], 0),
    ],
)
def test_duplicates_by_time(keep, expected, removed):
    df = frame_of(
        [("u", "a", 1.0, 20), ("u", "a", 2.0, 10), ("u", "a", 4.0, 30), ("v", "a", 5.0, 5)]
    )
    kept, n = deduplicate(df, keep)
    assert n == removed
    assert sorted(
        kept[["user_id", "item_id", "rating"]].itertuples(index=False, name=None)
    ) == sorted(expected)


def test_dedup_before_threshold_uses_kept_rating():
    # The latest opinion (2.0) fails the threshold, so the pair disappears entirely.
    df = frame_of([("u", "a", 5.0, 1), ("u", "a", 2.0, 2), ("u", "b", 5.0, 3)])
    out, report = preprocess(df, rating_threshold=4.0, duplicates="last")
    assert out["item_id"].tolist() == ["b"]
    assert (report.duplicates_removed, report.below_threshold_removed) == (1, 1)


def test_k_core_needs_several_rounds():
    # Round 1 removes user t and item q (1 interaction each); that leaves item z
    # with 1 (round 2), which leaves user w with 1 (round 3).
    rows = [
        ("u", "x"),
        ("v", "x"),
        ("u", "y"),
        ("w", "y"),
        ("w", "z"),
        ("t", "z"),
        ("v", "y"),
        ("u", "q"),
    ]
    df = frame_of(rows, ("user_id", "item_id"))
    out, stats = k_core_filter(df, 2, 2)
    assert sorted(map(tuple, out.to_numpy().tolist())) == [
        ("u", "x"),
        ("u", "y"),
        ("v", "x"),
        ("v", "y"),
    ]
    assert stats == {"rounds": 3, "users_removed": 2, "items_removed": 2, "interactions_removed": 4}


def reference_k_core(df, ku, ki):
    """Slow, obviously correct k-core: remove one offending row-set at a time."""
    rows = set(map(tuple, df[["user_id", "item_id"]].to_numpy().tolist()))
    changed = True
    while changed:
        changed = False
        users = pd.Series([u for u, _ in rows]).value_counts() if rows else pd.Series(dtype=int)
        items = pd.Series([i for _, i in rows]).value_counts() if rows else pd.Series(dtype=int)
        bad = {(u, i) for u, i in rows if users[u] < ku or items[i] < ki}
        if bad:
            rows -= bad
            changed = True
    return rows


@pytest.mark.parametrize("seed, ku, ki", [(0, 5, 5), (1, 3, 8), (2, 10, 2)])
def test_k_core_matches_reference(seed, ku, ki):
    df = synthetic(n_users=60, n_items=80, per_user=(1, 25), seed=seed)
    out, stats = k_core_filter(df, ku, ki)
    assert set(map(tuple, out[["user_id", "item_id"]].to_numpy().tolist())) == reference_k_core(
        df, ku, ki
    )
    if len(out):
        assert (
            out["user_id"].value_counts().min() >= ku and out["item_id"].value_counts().min() >= ki
        )
    assert stats["interactions_removed"] == len(df) - len(out)
    assert stats["users_removed"] == df["user_id"].nunique() - out["user_id"].nunique()


def test_report_counts_add_up():
    df = synthetic(seed=3)
    df = pd.concat([df, df.iloc[:7]], ignore_index=True)  # 7 exact duplicates
    out, report = preprocess(df, rating_threshold=3.0, k_core=(3, 2))
    assert report.input_interactions == len(df) and report.duplicates_removed == 7
    assert (
        report.input_interactions
        - report.duplicates_removed
        - report.below_threshold_removed
        - report.k_core_interactions_removed
        == report.output_interactions
        == len(out)
    )
    assert (report.user_core, report.item_core) == (3, 2)
    assert report.to_dict()["output_users"] == out["user_id"].nunique()
    assert list(out.index) == list(range(len(out)))


def test_preprocess_logs_report(caplog):
    with caplog.at_level("INFO", logger="graphrec.data.preprocess"):
        preprocess(synthetic(), k_core=2)
    assert "preprocess:" in caplog.text
