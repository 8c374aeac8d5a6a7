"""kg: clear errors for unusable input files and dataset names, --formats checked before any call,
one build per --out, facts stated about another item pruned, atomic writes respecting the umask."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fakes import FakeBackend
from helpers import write_items

from kg.build import run_build
from kg.cli import main
from kg.data import find_dataset
from kg.errors import DataFormatError
from kg.io import atomic_write_text
from kg.parse import Candidate, parse_output
from kg.resolve import ResolveConfig
from kg.validate import validate

REPO = Path(__file__).resolve().parents[2]


def build_args(items, out, server, *extra):
    return [
        "build",
        "--items",
        str(items),
        "--backend",
        "openai",
        "--base-url",
        server.base_url,
        "--model",
        "fake",
        "--out",
        str(out),
        "--no-embeddings",
        "--quiet",
        *extra,
    ]


def test_bad_formats_fail_before_any_llm_call(tmp_path, chat_server, capsys):
    items = write_items(tmp_path / "items.tsv")
    assert main(build_args(items, tmp_path / "out", chat_server, "--formats", "ttl,bogus")) == 2
    err = capsys.readouterr().err
    assert "unknown RDF format 'bogus'" in err and "Traceback" not in err
    assert chat_server.requests == []


def test_second_build_on_one_out_is_refused(tmp_path, chat_server, capsys):
    items = write_items(tmp_path / "items.tsv")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import sys, time
            from kg.lock import folder_lock
            with folder_lock(sys.argv[1], "kg build output"):
                print("held", flush=True); time.sleep(60)
        """),
            str(tmp_path / "out"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(build_args(items, tmp_path / "out", chat_server)) == 2
        err = capsys.readouterr().err
        assert f"in use by pid {holder.pid} " in err and chat_server.requests == []
    finally:
        holder.kill()
        holder.wait()
    assert (
        main(build_args(items, tmp_path / "out", chat_server)) == 0
    )  # the holder died: free again


def _unusable(tmp_path: Path, kind: str) -> Path:
    if kind == "directory":
        (tmp_path / "dir").mkdir()
        return tmp_path / "dir"
    if kind == "binary":
        (tmp_path / "bin").write_bytes(b"\x7fELF\x00\x01\x02" + os.urandom(256))
        return tmp_path / "bin"
    if kind == "not-utf8":
        (tmp_path / "latin").write_bytes("films: caf\xe9\n".encode("latin-1"))
        return tmp_path / "latin"
    (tmp_path / "ok.txt").write_text("1\n")
    return tmp_path / "ok.txt"


@pytest.mark.parametrize("option", ["--items", "--schema", "--item-ids-file"])
@pytest.mark.parametrize("kind", ["directory", "binary", "not-utf8", "unreadable"])
def test_unusable_input_files_are_clear_errors(
    tmp_path, chat_server, capsys, monkeypatch, option, kind
):
    items = write_items(tmp_path / "items.tsv")
    bad = _unusable(tmp_path, kind)
    if kind == "unreadable":  # tests run as root, which chmod cannot stop: make the read fail
        real = Path.read_bytes
        monkeypatch.setattr(
            Path,
            "read_bytes",
            lambda self: (
                (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
                if self == bad
                else real(self)
            ),
        )
    args = build_args(items, tmp_path / "out", chat_server)
    if option == "--items":
        args[2] = str(bad)
    else:
        args += [option, str(bad)]
    if option == "--items" and kind == "not-utf8":
        pytest.skip("items TSVs replace invalid UTF-8 bytes with a warning (documented)")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kg: error: {bad}") and "Traceback" not in err
    assert chat_server.requests == []


@pytest.mark.parametrize("name", ["../../../etc", "/etc", "a/b", ".."])
def test_dataset_names_must_be_names(name):
    with pytest.raises(DataFormatError, match="is not a name"):
        find_dataset(name)


def test_facts_stated_about_another_item_are_pruned(films_schema):
    text = "Master criminal Neil McCauley plans one last heist while detective Vincent Hanna closes in."
    candidates = [
        Candidate("keyword", "heist", subject="Casino"),
        Candidate("keyword", "heist", subject="Heat (1995)"),
        Candidate("features_character", "Neil McCauley", subject="this film"),
        Candidate("features_character", "Vincent Hanna"),
    ]
    kept, rejected = validate(candidates, films_schema, "3", text, item_title="Heat")
    assert [(t.relation, t.tail) for t in kept] == [
        ("keyword", "heist"),
        ("features_character", "Neil McCauley"),
        ("features_character", "Vincent Hanna"),
    ]
    assert rejected == {"other_subject": 1}


def test_parser_keeps_the_stated_subject():
    reply = (
        '[{"subject": "Casino", "relation": "keyword", "object": "heist"}, ["Casino", "keyword", "mob"], '
        '{"film": "Casino", "keyword": ["revenge"]}, {"subject": "friendship"}]'
    )
    got = {(c.relation, c.tail, c.subject) for c in parse_output(reply).candidates}
    assert {
        ("keyword", "heist", "Casino"),
        ("keyword", "mob", "Casino"),
        ("keyword", "revenge", "Casino"),
    } <= got
    assert (
        "subject",
        "friendship",
        None,
    ) in got  # "subject" is also a keyword synonym in a relation map


def test_build_counts_other_subject_rejections(tmp_path, films_schema):
    items_path = write_items(
        tmp_path / "items.tsv", {"3": ("Heat", "1995", "A last heist in Los Angeles.")}
    )
    from kg.data import read_items

    reply = '[{"subject": "Casino", "relation": "keyword", "object": "heist"}]'
    stats = run_build(
        read_items(items_path),
        films_schema,
        FakeBackend(replies=lambda messages: reply),
        tmp_path / "o",
        resolve_cfg=ResolveConfig(use_embeddings=False),
        quiet=True,
    )
    assert stats.rejections.get("other_subject") == 1 and stats.kept == 0


def test_atomic_writes_respect_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("kind", ["directory", "binary"])
def test_import_recbole_of_an_unusable_file(tmp_path, capsys, kind):
    bad = _unusable(tmp_path, kind)
    assert main(["import-recbole", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith(f"kg: error: {bad}: ")
