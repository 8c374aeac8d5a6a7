"""The cross-fitted keyword lexicon: learned from other items' gold only, used as a recorded, separate step."""

from __future__ import annotations

import pytest
from fakes import FakeBackend
from helpers import write_items

from kg.build import run_build
from kg.data import GoldFact, read_items
from kg.errors import DataFormatError
from kg.lexicon import build_lexicon, item_fold, load_lexicon
from kg.llm.journal import read_journal
from kg.pipeline import ExtractConfig
from kg.resolve import ResolveConfig


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
