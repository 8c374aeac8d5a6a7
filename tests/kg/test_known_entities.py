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
from kg.cues import cued_directors, director_cue
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


def _director_catalogue(texts_for_item_1: str):
    """Nora Vale directs items 2..40 (so she is known to item 1's fold); item 1's text varies."""
    texts = {"1": ("Film 1", "2000", texts_for_item_1)}
    gold = [GoldFact("1", "starring", "Tom Hanks")]
    for i in range(2, 41):
        texts[str(i)] = (f"Film {i}", "2000", f"A drama directed by Nora Vale. Film {i}.")
        gold.append(GoldFact(str(i), "directed_by", "Nora Vale"))
    return texts, gold


@pytest.mark.parametrize(
    "text, kept",
    [
        ("A drama directed by Nora Vale about grief.", True),
        ("Nora Vale's debut film follows a sailor.", True),
        ("From director Nora Vale comes a comedy.", True),
        ("Nora Vale directs this tale of lust.", True),
        # named in another role: subject, source author, actor, sequel of her film, list
        ("A documentary about the life and career of Nora Vale.", False),
        ("Based on Nora Vale's graphic novel, a war story.", False),
        ("The king (Nora Vale) fights his brother.", False),
        ("In the sequel to Nora Vale's loved film, troopers fight bugs.", False),
        ("Interviews with masters such as Nora Vale and many more.", False),
        ("A gridiron hero at Nora Vale High School bets on a date.", False),
    ],
)
def test_known_director_needs_a_director_cue(tmp_path, text, kept):
    """Issue 19: a director credited elsewhere is directed_by here only where the text says so
    (before the cues every one of these was kept: precision 0.73 on all films)."""
    texts, gold = _director_catalogue(text)
    items = read_items(write_items(tmp_path / "items.tsv", texts))
    known = learn_known_entities(items, gold)
    item = items[0]
    assert (("directed_by", "Nora Vale") in known.candidates(item.item_id, item.evidence)) == kept
    known.cues = False  # the rule before: every credited name found
    assert ("directed_by", "Nora Vale") in known.candidates(item.item_id, item.evidence)


def test_strong_cue_names_a_director_no_item_credits():
    assert cued_directors("It was directed by Hampton Fancher, who also wrote it.") == [
        "Hampton Fancher"
    ]
    assert cued_directors("The documentary was co-directed by Robert Fiore and George Butler.") == [
        "Robert Fiore",
        "George Butler",
    ]
    # a director of something else is a character; an award is not a name
    assert cued_directors("So CIA director Bill Cabot recruits an analyst.") == []
    assert cued_directors("Then casting director Annie Clark finds romance.") == []
    assert cued_directors("A thriller directed by Academy Award winner Kevin Macdonald.") == []
    assert director_cue("Director Julian Schnabel paints.", "julian schnabel")
    assert not director_cue("Starring Julian Schnabel as a painter.", "julian schnabel")
