"""Known entities first (issue 19): credited names in the text become directed_by / starring,
learned from other items' credits only, and are not also kept as characters; relations
switched off by default."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fakes import FakeBackend
from helpers import write_items

import kg.schema
from kg.build import run_build
from kg.data import GoldFact, read_items
from kg.errors import SchemaError
from kg.known import learn_known_entities, load_known_entities
from kg.llm.journal import read_journal
from kg.pipeline import ExtractConfig
from kg.resolve import ResolveConfig
from kg.schema import schema_from_dict


def _catalogue():
    texts, gold = {}, []
    for i in range(1, 41):
        iid = str(i)
        texts[iid] = (
            f"Film {i}",
            "2000",
            f"Tom Hanks plays a sailor lost at sea with Jane Doe. Directed by Nora Vale. "
            f"Also with Solo Actor{i}.",
        )
        gold.append(GoldFact(iid, "starring", "Tom Hanks"))  # credited wherever named
        gold.append(GoldFact(iid, "directed_by", "Nora Vale"))
        if i == 1:
            gold.append(GoldFact(iid, "starring", "Jane Doe"))  # named in 40 texts, credited once
        gold.append(GoldFact(iid, "starring", f"Solo Actor{i}"))  # this item's own credit only
    return texts, gold


def test_known_entities_are_cross_fitted_and_filtered(tmp_path):
    texts, gold = _catalogue()
    items = read_items(write_items(tmp_path / "items.tsv", texts))
    known = learn_known_entities(items, gold)
    for item in items:
        found = dict((name, rel) for rel, name in known.candidates(item.item_id, item.evidence))
        assert found.get("Tom Hanks") == "starring"
        assert found.get("Nora Vale") == "directed_by"
        assert "Jane Doe" not in found  # mentioned far more often than credited: a character
        assert f"Solo Actor{item.item_id}" not in found  # its own credit never makes its candidate
    known.save(tmp_path / "known.json.gz")
    again = load_known_entities(tmp_path / "known.json.gz")
    assert again.entries == known.entries and again.fingerprint() == known.fingerprint()


def test_build_recognises_known_entities_first(tmp_path, films_schema):
    texts, gold = _catalogue()
    items = read_items(write_items(tmp_path / "items.tsv", texts))
    learn_known_entities(items, gold).save(tmp_path / "known.json.gz")
    out = tmp_path / "run"
    run_build(
        items[:4],
        films_schema,
        FakeBackend(),
        out,
        ExtractConfig(
            relations=("keyword", "features_character"), known=str(tmp_path / "known.json.gz")
        ),
        ResolveConfig(use_embeddings=False),
        quiet=True,
    )
    fingerprint, records = read_journal(out / "journal.text.jsonl")
    assert "known" in fingerprint
    for rec in records:
        triples = [tuple(t) for t in rec["triples"]]
        assert ("starring", "Tom Hanks", "Person") in triples
        assert ("directed_by", "Nora Vale", "Person") in triples
        # the fake model gives capitalised pairs as characters: the known name is not one
        assert ("features_character", "Tom Hanks", "Character") not in triples
        assert rec["rejections"].get("known_entity", 0) >= 1
        assert [tuple(t) for t in rec["known"]] == [
            ("directed_by", "Nora Vale", "Person"),
            ("starring", "Tom Hanks", "Person"),
        ]


def test_default_off_relations_are_asked_but_kept_only_on_request(tmp_path):
    """A schema's ``default_off`` relations (measured too imprecise) are dropped unless named."""
    data = yaml.safe_load((Path(kg.schema.__file__).parent / "schemas" / "films.yaml").read_text())
    data["default_off"] = {"keyword": "precision 0.17 (gold)"}
    schema = schema_from_dict(data)
    items = read_items(write_items(tmp_path / "items.tsv"))
    kept = {}
    for name, relations in (("default", ()), ("asked", ("keyword", "features_character"))):
        out = tmp_path / name
        run_build(
            items,
            schema,
            FakeBackend(),
            out,
            ExtractConfig(relations=relations),
            ResolveConfig(use_embeddings=False),
            cache_path=None,
            quiet=True,
        )
        _, records = read_journal(out / "journal.text.jsonl")
        kept[name] = {t[0] for rec in records for t in rec.get("triples", [])}
    assert "keyword" not in kept["default"] and "keyword" in kept["asked"]
    with pytest.raises(SchemaError, match="default_off"):
        schema_from_dict({**data, "default_off": {"no_such_relation": "x"}})
