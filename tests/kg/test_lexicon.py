"""The cross-fitted keyword lexicon: learned from other items' gold only, used as a recorded, separate step."""

from __future__ import annotations

import json

import pytest
from fakes import FakeBackend
from helpers import write_items

from kg.build import run_build
from kg.data import GoldFact, read_items
from kg.errors import ConfigError, DataFormatError
from kg.lexicon import build_lexicon, item_fold, load_lexicon
from kg.llm.journal import read_journal
from kg.pipeline import ExtractConfig
from kg.resolve import ResolveConfig
from kg.schema import load_schema
from kg.typed import TypedValidator


def _catalogue():
    texts, gold = {}, []
    for i in range(1, 41):
        iid = str(i)
        texts[iid] = (
            f"Film {i}",
            "2000",
            f"A heist in Paris goes wrong; a story of revenge number {i}. Unique{i} word.",
        )
        gold.append(GoldFact(iid, "keyword", "heist"))  # always in text and gold: keyphraseness 1
        if i % 4 == 0:
            gold.append(
                GoldFact(iid, "keyword", "Paris")
            )  # in every text, gold for a quarter: 0.25
        gold.append(GoldFact(iid, "keyword", f"unique{i}"))  # only this item's own text and gold
    return texts, gold


def test_lexicon_is_cross_fitted_and_thresholded(tmp_path):
    texts, gold = _catalogue()
    items = read_items(write_items(tmp_path / "items.tsv", texts))
    lex = build_lexicon(items, gold, min_hits=2, min_ratio=0.15)
    for item in items:
        found = dict(lex.candidates(item.item_id, item.evidence))
        assert found.get("heist") == 1.0
        assert 0.15 <= found["Paris"] < 0.4
        # an item's own gold never makes its own candidates: its unique keyword is absent
        assert not any(k.startswith("unique") for k in found)
        assert "revenge" not in found  # never gold
    strict = build_lexicon(items, gold, min_hits=2, min_ratio=0.5)
    assert "Paris" not in dict(strict.candidates("1", items[0].evidence))
    # folds are stable and both used
    assert {item_fold(it.item_id, 2) for it in items} == {0, 1}
    lex.save(tmp_path / "lex.json.gz")
    again = load_lexicon(tmp_path / "lex.json.gz")
    assert again.entries == lex.entries and again.fingerprint() == lex.fingerprint()
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    with pytest.raises(DataFormatError, match="bad.json.gz"):
        load_lexicon(tmp_path / "bad.json.gz")
    with pytest.raises(ValueError):
        build_lexicon(items, gold, folds=1)


def test_build_records_lexicon_triples_apart(tmp_path, films_schema):
    texts, gold = _catalogue()
    items = read_items(write_items(tmp_path / "items.tsv", texts))
    build_lexicon(items, gold, min_ratio=0.15).save(tmp_path / "lex.json.gz")
    out = tmp_path / "run"
    run_build(
        items[:6],
        films_schema,
        FakeBackend(),
        out,
        ExtractConfig(
            relations=("keyword", "features_character"), lexicon=str(tmp_path / "lex.json.gz")
        ),
        ResolveConfig(use_embeddings=False),
        quiet=True,
    )
    fingerprint, records = read_journal(out / "journal.text.jsonl")
    assert "lexicon" in fingerprint
    for rec in records:
        lexicon = [tuple(t) for t in rec["lexicon"]]
        triples = [tuple(t) for t in rec["triples"]]
        assert ("keyword", "heist", "Keyword") in triples
        # the fake model finds "heist" itself, so it is the model's, not the lexicon's
        assert ("keyword", "heist", "Keyword") not in lexicon
        assert ("keyword", "Paris", "Keyword") in lexicon and set(lexicon) <= set(triples)


def _products(tmp_path):
    """40 products: "Wood Screws" is a curated category wherever the text says it; "Stainless
    Steel" is said everywhere but never a category."""
    texts, gold = {}, []
    for i in range(1, 41):
        texts[str(i)] = (f"Acme{i} Wood Screws", "", "Stainless Steel wood screws, 100 count.")
        gold.append(GoldFact(str(i), "category", "Wood Screws"))
        gold.append(GoldFact(str(i), "category", f"Only{i}"))  # this item's own, never elsewhere
    return read_items(write_items(tmp_path / "items.tsv", texts)), gold


def test_closed_lexicon_is_the_relations_vocabulary(tmp_path):
    items, gold = _products(tmp_path)
    lex = build_lexicon(items, gold, relation="category", min_ratio=0.5)
    assert lex.in_vocabulary("1", "wood screws") == "Wood Screws"  # the curated spelling
    assert lex.in_vocabulary("1", "Stainless Steel") is None  # in every text, never curated
    assert lex.in_vocabulary("1", "Only2") is None  # one item's own value: never twice
    typed = TypedValidator(closed={"Category": lex})
    assert typed.check("Category", "WOOD SCREWS", "1", "Acme1 Wood Screws") == "Wood Screws"
    assert typed.check("Category", "Stainless Steel", "1", "Acme1 Wood Screws") is None


def test_build_with_closed_lexicon_rejects_values_outside_it(tmp_path):
    items, gold = _products(tmp_path)
    build_lexicon(items, gold, relation="category", min_ratio=0.5).save(tmp_path / "cat.json.gz")

    def reply(messages):
        return json.dumps({"category": ["Stainless Steel", "Wood Screws"]})

    def build(out, closed):
        cfg = ExtractConfig(
            relations=("category",), lexicon=str(tmp_path / "cat.json.gz"), lexicon_closed=closed
        )
        run_build(items[:4], load_schema("products"), FakeBackend(reply), out, cfg,
                  ResolveConfig(use_embeddings=False), quiet=True)  # fmt: skip
        fingerprint, records = read_journal(out / "journal.text.jsonl")
        return fingerprint, records

    fp_open, open_records = build(tmp_path / "open", False)
    fp_closed, closed_records = build(tmp_path / "closed", True)
    assert fp_open["lexicon"] != fp_closed["lexicon"]  # a closed build never resumes an open one
    for rec in open_records:
        assert {t[1] for t in rec["triples"]} == {"Stainless Steel", "Wood Screws"}
    for rec in closed_records:
        assert {t[1] for t in rec["triples"]} == {"Wood Screws"}
        assert rec["rejections"].get("ill_typed") == 1
    with pytest.raises(ConfigError, match="lexicon_closed"):
        ExtractConfig(lexicon_closed=True)
