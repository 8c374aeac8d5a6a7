"""Sharded builds (``--shard i/n``) and their merge equal one build; cache export/import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeBackend
from helpers import write_items

from kg.build import run_build
from kg.cli import main
from kg.data import read_items
from kg.errors import ConfigError, DataFormatError, JournalError
from kg.llm.cache import ResponseCache
from kg.resolve import ResolveConfig
from kg.shard import in_shard, merge_builds, parse_shard, shard_of

MORE = {
    str(i): (
        f"Film {i}",
        "1999",
        f"Detective Anna Berg{i % 3} hunts a thief in Oslo; a story of love and revenge {i}.",
    )
    for i in range(10, 30)
}


def _triples(out: Path) -> set[tuple[str, ...]]:
    lines = (out / "triples.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {tuple(line.split("\t")) for line in lines}


def test_parse_shard_and_stable_assignment():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "x", "1/0", "1/2/3"):
        with pytest.raises(ConfigError):
            parse_shard(bad)
    ids = [str(i) for i in range(200)]
    # deterministic, disjoint and complete; crc32 is the same on every machine
    assert shard_of("1", 2) == shard_of("1", 2)
    parts = [{i for i in ids if in_shard(i, k, 3)} for k in range(3)]
    assert set().union(*parts) == set(ids) and sum(map(len, parts)) == len(ids)
    assert all(40 < len(p) < 95 for p in parts)


def test_two_shards_merged_equal_one_build(tmp_path, films_schema):
    from helpers import TEXTS

    items_path = write_items(tmp_path / "items.tsv", {**TEXTS, **MORE})
    items = read_items(items_path)
    cfg = ResolveConfig(use_embeddings=False)
    single = tmp_path / "single"
    run_build(items, films_schema, FakeBackend(), single, resolve_cfg=cfg, quiet=True)
    shard_dirs = []
    for k in range(2):
        shard_dirs.append(tmp_path / f"shard{k}")
        part = [it for it in items if in_shard(it.item_id, k, 2)]
        assert 0 < len(part) < len(items)
        run_build(part, films_schema, FakeBackend(), shard_dirs[-1], resolve_cfg=cfg, quiet=True)
    merged = tmp_path / "merged"
    report = merge_builds(shard_dirs, merged, films_schema, items, resolve_cfg=cfg)
    assert _triples(merged) == _triples(single)
    assert report["text"]["duplicates_dropped"] == 0
    assert report["text"]["items"] == len(items)
    single_stats = json.loads((single / "stats.json").read_text())
    merged_stats = json.loads((merged / "stats.json").read_text())
    assert merged_stats["entities"] == single_stats["entities"]
    assert merged_stats["graph"]["edges"] == single_stats["graph"]["edges"]
    # each item keeps its own named graph
    nq = __import__("gzip").decompress((merged / "kg.nq.gz").read_bytes()).decode()
    assert "/graph/text/10>" in nq and "/graph/text/1>" in nq
    # the merged cache answers a rebuild with zero calls
    again = FakeBackend()
    stats = run_build(
        items,
        films_schema,
        again,
        tmp_path / "rebuild",
        resolve_cfg=cfg,
        cache_path=merged / "cache.sqlite",
        quiet=True,
    )
    assert again.calls == [] and stats.calls == 0 and stats.cache_hits > 0
    # merging a shard twice keeps every item once
    twice = merge_builds(
        [shard_dirs[0], shard_dirs[0], shard_dirs[1]],
        tmp_path / "twice",
        films_schema,
        resolve_cfg=cfg,
    )
    assert twice["text"]["duplicates_dropped"] > 0 and _triples(tmp_path / "twice") == _triples(
        single
    )


def test_merge_refuses_shards_of_different_builds(tmp_path, films_schema):
    items = read_items(write_items(tmp_path / "items.tsv"))
    cfg = ResolveConfig(use_embeddings=False)
    run_build(items[:3], films_schema, FakeBackend(), tmp_path / "a", resolve_cfg=cfg, quiet=True)
    other = FakeBackend()
    other.model = "fake-2"
    run_build(items[3:], films_schema, other, tmp_path / "b", resolve_cfg=cfg, quiet=True)
    with pytest.raises(JournalError, match="other settings"):
        merge_builds(
            [tmp_path / "a", tmp_path / "b"], tmp_path / "m", films_schema, resolve_cfg=cfg
        )
    with pytest.raises(ConfigError):
        merge_builds([tmp_path / "a"], tmp_path / "a", films_schema, resolve_cfg=cfg)


def test_cli_shard_build_merge_and_cache_export(tmp_path, chat_server):
    from helpers import TEXTS

    items_path = write_items(tmp_path / "items.tsv", {**TEXTS, **MORE})
    common = [
        "--items",
        str(items_path),
        "--backend",
        "openai",
        "--base-url",
        chat_server.base_url,
        "--model",
        "m",
        "--no-embeddings",
        "--formats",
        "nq.gz",
        "-q",
    ]
    for k in range(2):
        assert main(["build", *common, "--out", str(tmp_path / f"s{k}"), "--shard", f"{k}/2"]) == 0
    assert (
        main(
            [
                "merge",
                str(tmp_path / "s0"),
                str(tmp_path / "s1"),
                "--out",
                str(tmp_path / "m"),
                "--no-embeddings",
                "--formats",
                "nq.gz",
                "-q",
            ]
        )
        == 0
    )
    assert main(["build", *common, "--out", str(tmp_path / "one")]) == 0
    assert _triples(tmp_path / "m") == _triples(tmp_path / "one")
    # compact cache export -> import into a fresh folder -> rebuild without a single request
    export = tmp_path / "cache.jsonl.gz"
    assert main(["cache-export", str(tmp_path / "m"), "--out", str(export)]) == 0
    assert main(["cache-import", str(export), "--cache", str(tmp_path / "seeded")]) == 0
    served = len(chat_server.requests)
    assert main(["build", *common, "--out", str(tmp_path / "seeded")]) == 0
    assert len(chat_server.requests) == served
    assert _triples(tmp_path / "seeded") == _triples(tmp_path / "one")
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(__import__("gzip").compress(b'{"key": "x", "text": 1}\n'))
    with pytest.raises(DataFormatError, match=r"bad.jsonl.gz:1: bad cache record"):
        ResponseCache(tmp_path / "c.sqlite").import_jsonl(bad)
