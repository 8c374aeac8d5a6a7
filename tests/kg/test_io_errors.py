"""One error hierarchy and one atomic writer / JSON-lines journal for kg, graphrec and alignment."""

from __future__ import annotations

import pytest

import graphrec.errors as gerr
import graphrec.io as gio
import kg.errors as kerr
import kg.io as kio


def test_graphrec_errors_are_kg_errors():
    err = gerr.DataFormatError("bad value", path="items.tsv", line=3, field="year")
    assert str(err) == "items.tsv:3: field 'year': bad value"
    assert (err.path, err.line, err.field) == ("items.tsv", 3, "year")
    with pytest.raises(kerr.DataFormatError):
        raise err
    assert isinstance(err, gerr.GraphrecError) and isinstance(err, ValueError)
    with pytest.raises(kerr.ConfigError):
        raise gerr.ConfigError("unknown key 'x'")
    for cls in (gerr.TrainingError, gerr.CheckpointError, gerr.LockError):
        assert issubclass(cls, kerr.KGError)
    # kg's errors are not graphrec's: kg never depends on graphrec
    assert not issubclass(kerr.DataFormatError, gerr.GraphrecError)


def test_long_messages_are_cut_once():
    err = gerr.DataFormatError("x" * 5000, path="f")
    assert len(str(err)) <= kerr.MAX_MESSAGE and "characters cut" in str(err)


def test_graphrec_io_is_kg_io():
    for name in (
        "atomic_open",
        "atomic_write_bytes",
        "atomic_write_text",
        "atomic_write_json",
        "append_jsonl",
        "read_jsonl",
    ):
        assert getattr(gio, name) is getattr(kio, name), name


def test_append_jsonl_to_a_path_or_a_handle_writes_the_same_lines(tmp_path):
    records = [{"a": 1}, {"b": "é\u2028"}]
    by_path = tmp_path / "sub" / "by_path.jsonl"
    for record in records:
        kio.append_jsonl(by_path, record)
    by_handle = tmp_path / "by_handle.jsonl"
    with open(by_handle, "a", encoding="utf-8") as handle:
        for record in records:
            kio.append_jsonl(handle, record)
    assert by_path.read_bytes() == by_handle.read_bytes()
    assert kio.read_jsonl(by_path) == records  # U+2028 is no line break


def test_read_jsonl_drops_a_torn_last_line_and_names_a_damaged_one(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}\n{"c": \n\n', encoding="utf-8")
    assert kio.read_jsonl(path) == [{"a": 1}, {"b": 2}]
    path.write_text('{"a": 1}\nnot json\n{"c": 3}\n', encoding="utf-8")
    with pytest.raises(kerr.DataFormatError, match=r"log.jsonl:2: corrupt journal line"):
        kio.read_jsonl(path)


def test_atomic_write_json_and_text(tmp_path):
    kio.atomic_write_json(tmp_path / "r.json", {"title": "Amélie"})
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == '{\n  "title": "Amélie"\n}\n'
    kio.atomic_write_text(tmp_path / "t.txt.gz", "hello\n")
    assert kio.read_text_any(tmp_path / "t.txt.gz") == "hello\n"
