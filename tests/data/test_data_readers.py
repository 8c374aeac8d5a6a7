"""Readers: RecBole atomic files, generic CSV/TSV, and every bad-input error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from data_helpers import write

from graphrec.data.readers import read_atomic_dir, read_atomic_file, read_interactions, read_table
from graphrec.errors import DataFormatError

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def raises_at(call, path, line, field=None):
    """Run ``call``; assert a DataFormatError naming ``path``, ``line`` and ``field``."""
    with pytest.raises(DataFormatError) as info:
        call()
    err = info.value
    assert err.path == str(path)
    assert err.line == line
    assert err.field == field
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert str(err).startswith(where), str(err)
    if field is not None:
        assert f"'{field}'" in str(err)
    return err


# ------------------------------------------------------------------ atomic
def test_typed_header_types_and_names(tmp_path):
    path = write(
        tmp_path / "x.item",
        "item_id:token\ttitle:token_seq\tyear:float\temb:float_seq\tcode:token\n"
        "007\tToy  Story\t1995\t0.5 1 -2e3\tNA\n"
        "12\t\t\t\tnull\n",
    )
    frame = read_atomic_file(path, required=("item_id",))
    assert list(frame.columns) == ["item_id", "title", "year", "emb", "code"]
    assert frame.attrs["field_types"] == {
        "item_id": "token",
        "title": "token_seq",
        "year": "float",
        "emb": "float_seq",
        "code": "token",
    }
    assert frame["item_id"].tolist() == ["007", "12"]  # ids stay strings
    assert frame["title"].tolist() == [["Toy", "Story"], []]
    assert (
        frame["year"].dtype == np.float64
        and frame["year"].iloc[0] == 1995.0
        and np.isnan(frame["year"].iloc[1])
    )
    assert frame["emb"].tolist() == [[0.5, 1.0, -2000.0], []]
    assert frame["code"].tolist() == ["NA", "null"]  # tokens, not missing values


def test_presplit_directory(tmp_path):
    for split, rows in {"train": "1\ta\n1\tb\n2\ta\n", "valid": "1\tc\n", "test": "2\tc\n"}.items():
        write(tmp_path / f"bench.{split}.inter", "user_id:token\titem_id:token\n" + rows)
    write(tmp_path / "bench.kg", "head_id:token\trelation_id:token\ttail_id:token\ne1\tr\te2\n")
    write(tmp_path / "bench.link", "item_id:token\tentity_id:token\na\te1\n")
    atomic = read_atomic_dir(tmp_path)
    assert atomic.name == "bench" and atomic.presplit and atomic.inter is None
    assert {k: len(v) for k, v in atomic.splits.items()} == {"train": 3, "valid": 1, "test": 1}
    assert list(atomic.kg.columns) == ["head", "relation", "tail"]
    assert atomic.link.to_dict("records") == [{"item_id": "a", "entity_id": "e1"}]


def test_presplit_without_test_file(tmp_path):
    write(tmp_path / "b.train.inter", "user_id:token\titem_id:token\n1\ta\n")
    raises_at(lambda: read_atomic_dir(tmp_path), tmp_path / "b.test.inter", None)


def test_custom_field_names_are_standardised(tmp_path):
    write(tmp_path / "s.inter", "session:token\tproduct:token\tts:float\n1\ta\t5\n")
    atomic = read_atomic_dir(tmp_path, user_field="session", item_field="product", time_field="ts")
    assert list(atomic.inter.columns) == ["user_id", "item_id", "timestamp"]


def test_directory_errors(tmp_path):
    raises_at(lambda: read_atomic_dir(tmp_path / "nope"), tmp_path / "nope", None)
    raises_at(lambda: read_atomic_dir(tmp_path), tmp_path, None)  # no .inter
    write(tmp_path / "a.inter", INTER)
    write(tmp_path / "b.inter", INTER)
    err = raises_at(lambda: read_atomic_dir(tmp_path), tmp_path, None)
    assert "a, b" in str(err)


@pytest.mark.parametrize(
    "text, line, field, needle",
    [
        ("user_id:token\trating:float\n1\t5\n", 1, "item_id", "missing required column"),
        (INTER + "1\ta\t5\t10\n2\tb\t4\t11\t99\n", 3, None, "too many fields"),
        (INTER + "1\ta\t5\t10\n2\tb\t4\n", 3, None, "too few fields"),
        (INTER + "1\ta\t5\t10\n\n\n\t b\t4\t12\n", 5, "user_id", "empty id"),
        (INTER + "1\t\t5\t10\n", 2, "item_id", "empty id"),
        (INTER + "1\ta\tfive\t10\n", 2, "rating", "'five'"),
        (INTER + "1\ta\tnan\t10\n", 2, "rating", "'nan'"),
        (INTER + "1\ta\t\t10\n", 2, "rating", "empty value"),
        (INTER + "1\ta\t5\tinf\n", 2, "timestamp", "'inf'"),
        (INTER + "1\ta\t5\t2020-01-01\n", 2, "timestamp", "2020-01-01"),
        ("user_id:token\titem_id:tokn\n1\ta\n", 1, "item_id", "unknown field type"),
        ("user_id\titem_id:token\n1\ta\n", 1, "user_id", "not 'name:type'"),
        ("user_id:token\tuser_id:token\n1\t2\n", 1, "user_id", "duplicate column"),
    ],
)
def test_bad_atomic_input(tmp_path, text, line, field, needle):
    path = write(tmp_path / "d.inter", text)
    err = raises_at(
        lambda: read_atomic_file(
            path, required=("user_id", "item_id"), numeric_required=("rating", "timestamp")
        ),
        path,
        line,
        field,
    )
    assert needle in str(err)


def test_bad_float_seq(tmp_path):
    path = write(tmp_path / "d.item", "item_id:token\temb:float_seq\n1\t1 2\n2\t1 x\n")
    raises_at(lambda: read_atomic_file(path, required=("item_id",)), path, 3, "emb")


def test_missing_empty_and_undecodable_files(tmp_path):
    raises_at(lambda: read_atomic_file(tmp_path / "none.inter"), tmp_path / "none.inter", None)
    empty = write(tmp_path / "empty.inter", "")
    assert "empty" in str(raises_at(lambda: read_atomic_file(empty), empty, None))
    binary = tmp_path / "bin.inter"
    binary.write_bytes(INTER.encode() + b"1\ta\t5\t1\n2\t\xff\t5\t1\n")
    raises_at(lambda: read_atomic_file(binary), binary, 3)


def test_header_only_file_gives_empty_frame(tmp_path):
    frame = read_atomic_file(write(tmp_path / "h.inter", INTER), required=("user_id", "item_id"))
    assert len(frame) == 0 and list(frame.columns) == ["user_id", "item_id", "rating", "timestamp"]


def test_pandas_parser_error_is_translated(tmp_path, monkeypatch):
    path = write(tmp_path / "p.inter", INTER + "1\ta\t5\t1\n")

    def broken(*args, **kwargs):
        raise pd.errors.ParserError(
            "Error tokenizing data. C error: Expected 4 fields in line 7, saw 5"
        )

    monkeypatch.setattr(pd, "read_csv", broken)
    raises_at(lambda: read_atomic_file(path), path, 7)


def test_crlf_and_blank_lines_keep_line_numbers(tmp_path):
    path = tmp_path / "c.inter"
    path.write_bytes(b"user_id:token\titem_id:token\r\n1\ta\r\n\r\n2\tb\r\n\r\n3\r\n")
    raises_at(lambda: read_atomic_file(path), path, 6)
    path.write_bytes(b"user_id:token\titem_id:token\r\n1\ta\r\n\r\n2\tb\r\n")
    assert read_atomic_file(path)["item_id"].tolist() == ["a", "b"]


# --------------------------------------------------------------------- CSV
def test_csv_with_mapping(tmp_path):
    path = write(
        tmp_path / "r.csv",
        'userId,movieId,rating,timestamp,title\n1,007,4.5,964982703,"Bond, James"\n2,1,3,964982224,"say ""hi"""\n',
    )
    frame = read_interactions(
        path, user="userId", item="movieId", rating="rating", timestamp="timestamp"
    )
    assert list(frame.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert frame["item_id"].tolist() == ["007", "1"]
    assert frame["rating"].tolist() == [4.5, 3.0]
    assert frame["timestamp"].dtype == np.float64


def test_headerless_by_position_and_other_separator(tmp_path):
    path = write(tmp_path / "r.txt", "u1;i1;5\nu1;i1;5\nu2;i3;1\n")
    frame = read_interactions(path, user=0, item=1, rating=2, sep=";", header=False)
    assert frame.to_dict("list") == {
        "user_id": ["u1", "u1", "u2"],
        "item_id": ["i1", "i1", "i3"],
        "rating": [5.0, 5.0, 1.0],
    }
    with pytest.raises(ValueError, match="position"):
        read_interactions(path, user="user", item=1, sep=";", header=False)


@pytest.mark.parametrize(
    "text, kwargs, line, field, needle",
    [
        ("u,i,r\n1,2,3\n", {"item": "item"}, 1, "item", "missing required column"),
        ("u,i,r\n1,2,3\n4,5,6,7\n", {}, 3, None, "too many fields"),
        ("u,i,r\n1,2,3\n4,5\n", {}, 3, None, "too few fields"),
        ('u,i,r\n1,"2,x",3\n4,"5\nstill 5",6\n7,8\n', {}, 5, None, "too few fields"),
        ("u,i,r\n1,2,3\n,5,6\n", {}, 3, "u", "empty id"),
        ("u,i,r\n1,2,3\n4,5,NaN\n", {}, 3, "r", "'NaN'"),
        ("u,i,r\n1,2,3\n4,5,x\n4,6,y\n", {}, 3, "r", "2 bad values"),
    ],
)
def test_bad_csv_input(tmp_path, text, kwargs, line, field, needle):
    path = write(tmp_path / "bad.csv", text)
    options = {"user": "u", "item": "i", "rating": "r", **kwargs}
    err = raises_at(lambda: read_interactions(path, **options), path, line, field)
    assert needle in str(err)


def test_table_line_numbers(tmp_path):
    table = read_table(write(tmp_path / "t.tsv", "a\tb\n\n1\t2\n\n3\t4\n"), sep="\t")
    assert table.lines.tolist() == [3, 5]
    assert table.frame.to_dict("list") == {"a": ["1", "3"], "b": ["2", "4"]}
