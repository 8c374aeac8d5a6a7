"""Typed validation (issue 19): values of the wrong kind are rejected as ``ill_typed``.

Each case here was kept before typed validation: the values are grounded spans of the
text, of the wrong kind ("Molly and" as a place, "Dave Kovic" as a period, "Scotch Magic
Office Tape" as a brand, "High" as a category).
"""

from __future__ import annotations

import gzip
import json

import pytest
from fakes import FakeBackend

from kg.brands import learn_catalogue_lexicon, load_catalogue_lexicon
from kg.build import run_build
from kg.data import Item
from kg.lexicon import item_fold
from kg.llm.journal import read_journal
from kg.parse import Candidate
from kg.pipeline import ExtractConfig
from kg.resolve import ResolveConfig
from kg.schema import load_schema
from kg.typed import TypedValidator, is_name_fragment, is_proper_noun_phrase, is_time_expression
from kg.validate import REJECTION_REASONS, validate

FILM_TEXT = (
    "Molly and her brother Michael is a 12-year-old who dreams of Paris. Dave Kovic runs a "
    "temp agency in Georgetown during the 1950s, the summer after World War II. "
    "A House Party in the 19th century."
)


@pytest.mark.parametrize(
    "value",
    ["1950s", "the 1950s", "19th century", "World War II", "the Middle Ages", "1969", "300 BC"],
)
def test_time_expressions(value):
    assert is_time_expression(value)


@pytest.mark.parametrize(
    "value",
    [
        "Dave Kovic",
        "12-year-old",
        "Georgetown",
        "temp agency",
        "12",
        "10",
        "18th",
        "Christmas Day on a",
    ],
)
def test_not_time_expressions(value):
    assert not is_time_expression(value)


@pytest.mark.parametrize(
    "value", ["Molly and", "Michael is a 12-year-old", "her brother", "dreams"]
)
def test_clause_fragments_are_not_names(value):
    assert not is_proper_noun_phrase(value)


@pytest.mark.parametrize("value", ["Paris", "Dave Kovic", "the Bronx", "Statue of Liberty"])
def test_proper_noun_phrases(value):
    assert is_proper_noun_phrase(value)


def _films(cands):
    schema = load_schema("films")
    typed = TypedValidator(schema.name_types)
    return validate(cands, schema, "1", FILM_TEXT, item_title="Dave", typed=typed)


def test_films_ill_typed_values_rejected_and_counted():
    kept, rejected = _films(
        [
            Candidate("set_in", "Molly and"),
            Candidate("set_in", "Georgetown"),
            Candidate("set_in", "1950s"),
            Candidate("set_in_period", "Dave Kovic"),
            Candidate("set_in_period", "12-year-old"),
            Candidate("set_in_period", "the 1950s"),
            Candidate("features_character", "Michael is a 12-year-old"),
            Candidate("features_character", "Molly"),
        ]
    )
    assert [(t.relation, t.tail) for t in kept] == [
        ("set_in", "Georgetown"),
        ("set_in_period", "the 1950s"),
        ("features_character", "Molly"),
    ]
    assert rejected == {"ill_typed": 5}
    assert "ill_typed" in REJECTION_REASONS


def test_without_typed_validator_the_fragments_pass():
    """The seam: the same candidates without ``typed`` are kept (what the build did before)."""
    schema = load_schema("films")
    kept, _ = validate(
        [Candidate("set_in_period", "Dave Kovic"), Candidate("set_in", "Molly and")],
        schema,
        "1",
        FILM_TEXT,
        item_title="Dave",
    )
    assert len(kept) == 2


def _catalogue_items() -> list[Item]:
    """A small catalogue: brands lead titles and recur; product words recur everywhere."""
    rows = [
        "Scotch Magic Office Tape, 3/4 in",
        "Scotch Heavy Duty Packaging Tape, Clear",
        "Scotch Shipping Packaging Tape with Dispenser",
        "Scotch Foil Tape, 2-Inch",
        "Paper Mate InkJoy 300 Ballpoint Pens, Blue",
        "Paper Mate Flair Felt Tip Pens, Black",
        "Paper Mate Write Bros Ballpoint Pens, 12 Count",
        "Paper Mate Clearpoint Mechanical Pencils",
        "AT&T CL2909WH Corded Phone, White",
        "AT&T TL86103 Cordless Phone",
        "AT&T EL52300 Cordless Phone with Answering System",
        "Clear Packaging Tape, 6 Rolls",
        "Clear Vinyl Tubing, 10 ft",
        "Clear Ballpoint Pens, 10 Pack",
        "Heavy Duty Packaging Tape, Clear",
        "Blue Ballpoint Pens, 12 Pack",
        "Office Ballpoint Pens for Writing, Black",
        "Zareba WS3 Electric Fence Warning Signs",
        "Uline Packaging Tape, Clear, 36 Rolls",
        "Uline Cordless Phone, Black",
        "Printer Paper, 500 Sheets",
        "Copy Paper for Office, White",
        "Sticky Notes, 24 Pack",
    ]
    ids = (str(i) for i in range(10_000))
    by_fold: dict[int, list[str]] = {0: [], 1: []}
    items = []
    for title in rows:  # every title twice in each fold: both folds learn it
        while len(by_fold[0]) < 2 or len(by_fold[1]) < 2:
            i = next(ids)
            by_fold[item_fold(i, 2)].append(i)
        for i in by_fold[0][:2] + by_fold[1][:2]:
            text = f"{title}. Works with paper, for office and home; clear and heavy duty."
            items.append(Item(i, title, "", title, text))
        by_fold = {f: v[2:] for f, v in by_fold.items()}
    return items


@pytest.fixture(scope="module")
def catalogue():
    items = _catalogue_items()
    return learn_catalogue_lexicon(items, min_lead=2, descriptive_min=3, min_head=3)


def test_brand_is_the_shortest_recurring_leading_span(catalogue):
    assert catalogue.brand_span("0", "Scotch Magic Office Tape, 3/4 in") == "Scotch"
    assert catalogue.brand_span("0", "Paper Mate InkJoy 300 Ballpoint Pens") == "Paper Mate"
    assert catalogue.brand_span("0", "AT&T CL2909WH Corded Phone, White") == "AT&T"
    # a descriptive word leads: no brand stated up front
    assert catalogue.brand_span("0", "Clear Packaging Tape, 6 Rolls") is None
    # a quantity leads: no brand
    assert catalogue.brand_span("0", "10pcs Ballpoint Pens") is None


def test_brand_values_cut_to_the_brand_or_rejected(catalogue):
    schema = load_schema("products")
    typed = TypedValidator(schema.name_types, catalogue)
    title = "Scotch Heavy Duty Packaging Tape, Clear"
    kept, rejected = validate(
        [
            Candidate("brand", "Scotch Heavy Duty Packaging Tape"),
            Candidate("brand", "Heavy Duty"),
            Candidate("category", "High"),
            Candidate("category", "packaging tape"),
        ],
        schema,
        "0",
        title + ". High quality packaging tape for home.",
        item_title=title,
        typed=typed,
    )
    assert [(t.relation, t.tail) for t in kept] == [
        ("brand", "Scotch"),
        ("category", "Packaging Tape"),
    ]
    assert rejected == {"ill_typed": 2}


def test_category_vocabulary_and_units(catalogue):
    assert catalogue.category_phrases("0", "Uline Packaging Tape, Clear, 36 Rolls") == [
        "Packaging Tape"
    ]
    assert catalogue.in_vocabulary("0", "high") is None
    assert catalogue.category_phrases("0", "Blue Ballpoint Pens, 12 Pack") == ["Ballpoint Pens"]
    # "Pack" follows a number: a unit, never a category
    assert "pack" in catalogue.units[0]
    assert catalogue.category_phrases("0", "Green Ballpoint 12 Pack") == []


def test_catalogue_lexicon_round_trip(catalogue, tmp_path):
    path = tmp_path / "catalogue.json.gz"
    catalogue.save(path)
    again = load_catalogue_lexicon(path)
    assert again.fingerprint() == catalogue.fingerprint()
    assert again.brand_span("3", "Scotch Foil Tape") == "Scotch"


def test_cross_fitting_own_title_does_not_make_a_brand():
    """A brand seen in one item only (its own fold) is not learned for that item."""
    items = [
        Item(str(i), t, "", t, t + ".") for i, t in enumerate(["Zorblax Widget", "Zorblax Gadget"])
    ]
    lex = learn_catalogue_lexicon(items, min_lead=2)
    for it in items:
        other = [o for o in items if item_fold(o.item_id, 2) != item_fold(it.item_id, 2)]
        if len(other) < 2:
            assert "zorblax" not in lex.brands[item_fold(it.item_id, 2)]


@pytest.mark.parametrize(
    ("value", "text", "fragment"),
    [
        ("Hundred", "a flood in Hundred Acre Wood.", True),
        ("Hundred Acre Wood", "a flood in Hundred Acre Wood.", False),
        ("Mickle", "In this remake, director Jim Mickle paints a family.", True),
        ("Shakespeare", "Young Shakespeare is forced to stage his comedy.", False),
        ("Peter Parker", "For Peter Parker, life is busy.", False),
        ("Moore", "Joe Moore has a job. Moore and his partner are broke.", False),
        ("Estate", "moving into the run-down Spiderwick Estate with their mother", True),
    ],
)
def test_name_fragments(value, text, fragment):
    assert is_name_fragment(value, text) is fragment


def test_fragment_of_a_longer_name_is_ill_typed():
    schema = load_schema("films")
    text = "Twin brothers Jared and Simon Grace move into the run-down Spiderwick Estate."
    kept, rejected = validate(
        [Candidate("features_character", "Estate"), Candidate("features_character", "Jared")],
        schema,
        "1",
        text,
        item_title="Spiderwick",
        typed=TypedValidator(schema.name_types),
    )
    assert [t.tail for t in kept] == ["Jared"] and rejected == {"ill_typed": 1}


def test_build_with_a_catalogue_lexicon_cuts_the_model_brand(tmp_path, catalogue):
    """A products build: the model's over-long brand is cut to the learned brand, its
    category outside the vocabulary is ill-typed, and the catalogue's values are recorded."""
    path = tmp_path / "catalogue.json.gz"
    catalogue.save(path)
    title = "Uline Packaging Tape, Clear, 36 Rolls"
    item = Item("0", title, "", f"{title}. High quality tape.", f"{title}. High quality tape.")

    def reply(messages):
        return json.dumps({"brand": ["Uline Packaging"], "category": ["High"]})

    out = tmp_path / "run"
    run_build(
        [item],
        load_schema("products"),
        FakeBackend(reply),
        out,
        ExtractConfig(relations=("brand", "category"), catalogue=str(path)),
        ResolveConfig(use_embeddings=False),
        cache_path=None,
        quiet=True,
    )
    _, records = read_journal(out / "journal.text.jsonl")
    (rec,) = records
    assert [tuple(t) for t in rec["triples"]] == [
        ("brand", "Uline", "Brand"),
        ("category", "Packaging Tape", "Category"),
    ]
    assert [tuple(t) for t in rec["catalogue"]] == [("category", "Packaging Tape", "Category")]
    assert rec["rejections"]["ill_typed"] == 1


def test_a_brand_span_grows_while_the_catalogue_goes_on_with_the_same_word():
    """ "Gardner" starts titles that all go on with "Bender": the brand is "Gardner Bender";
    "Scotch" goes on with several words, so it stays "Scotch" (no product line as brand)."""
    rows = [
        "Gardner Bender Wire Connectors, Orange",
        "Gardner Bender Cable Staples, White",
        "Gardner Bender Electrical Tape, Black",
        "Scotch Magic Office Tape, 3/4 in",
        "Scotch Heavy Duty Packaging Tape, Clear",
        "Scotch Foil Tape, 2-Inch",
    ]
    items = []
    for i in range(60):  # every title in both folds
        title = rows[i % len(rows)]
        items.append(Item(str(i), title, "", title, f"{title}. Works with paper and tape."))
    lexicon = learn_catalogue_lexicon(items, min_lead=2, descriptive_min=50, min_head=50)
    for item_id in ("0", "1"):  # both folds
        assert (
            lexicon.brand_span(item_id, "Gardner Bender 10-104 Ring Terminal") == "Gardner Bender"
        )
        assert lexicon.brand_span(item_id, "Scotch Magic Greener Tape") == "Scotch"
    # without the extension (the shortest span) it would be "Gardner"
    shortest = learn_catalogue_lexicon(
        items, min_lead=2, descriptive_min=50, min_head=50, continue_share=2.0
    )
    assert shortest.brand_span("0", "Gardner Bender 10-104 Ring Terminal") == "Gardner"


def test_a_catalogue_lexicon_saved_before_extensions_loads_and_extends_nothing(tmp_path):
    titles = ["Gardner Bender Tape", "Gardner Bender Staples"] * 8
    items = [Item(str(i), t, "", t, t) for i, t in enumerate(titles)]
    lexicon = learn_catalogue_lexicon(items, min_lead=2)
    assert lexicon.brand_span("0", "Gardner Bender Tape") == "Gardner Bender"
    path = tmp_path / "old.json.gz"
    lexicon.save(path)
    data = json.loads(gzip.decompress(path.read_bytes()))
    del data["extensions"], data["continue_share"]
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    old = load_catalogue_lexicon(path)
    assert old.extensions == [] and old.brand_span("0", "Gardner Bender Tape") == "Gardner"


def test_a_never_seen_brand_is_its_first_word_or_nothing(catalogue):
    """Issue 19: the second word of a never-seen leading name was more often a product word
    ("Sparco Sealing Tape", "iXCC Basic Series") than a name's: the fallback brand is one word
    (was two); with ``fallback=False`` the lexicon abstains on a name it never saw."""
    assert catalogue.brand_span("0", "Sparco Sealing Tape Transparent, 6 Rolls") == "Sparco"
    assert catalogue.brand_span("0", "iXCC Basic Series PLA Filament") == "iXCC"
    strict = learn_catalogue_lexicon(
        _catalogue_items(), min_lead=2, descriptive_min=3, min_head=3, fallback=False
    )
    assert strict.brand_span("0", "Sparco Sealing Tape Transparent, 6 Rolls") is None
    assert strict.brand_span("0", "Scotch Magic Office Tape, 3/4 in") == "Scotch"  # learned


@pytest.mark.parametrize(
    ("title", "brand"),
    [
        ("Uline Tools 1234 Cordless Phone", "Uline Tools"),
        ("Uline Industries Packaging Tape", "Uline Industries"),
        ("Uline & Hodge Grommet Kit", "Uline & Hodge"),
        ("Uline Manufacturing Co. Packaging Tape", "Uline Manufacturing Co"),
        # a singular product word or a model number is not a company's name
        ("Uline Multi-Use Product, 8 oz", "Uline"),
        ("Uline Tool Set, 10 Pieces", "Uline"),
        ("Uline 40 Tools Kit", "Uline"),
    ],
)
def test_a_brand_grows_to_the_company_name_the_title_spells(catalogue, title, brand):
    """Issue 19: "Titan Tools", "LDR Industries", "Lord & Hodge" are the makers' names (the
    brand span stopped at "Titan", "LDR", "Lord" before)."""
    assert catalogue.brand_span("0", title) == brand


def test_a_catalogue_lexicon_saved_before_company_names_keeps_its_spans(tmp_path, catalogue):
    path = tmp_path / "old.json.gz"
    catalogue.save(path)
    data = json.loads(gzip.decompress(path.read_bytes()))
    del data["company_names"], data["fallback"]
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    old = load_catalogue_lexicon(path)
    assert old.fallback and not old.company_names
    assert old.brand_span("0", "Uline Tools 1234 Cordless Phone") == "Uline"


def test_catalogue_option_auto_abstain_learns_an_abstaining_lexicon(tmp_path):
    from kg.brands import resolve_catalogue_option

    items = _catalogue_items()
    path = resolve_catalogue_option("auto-abstain", items, tmp_path)
    assert path.endswith("catalogue-abstain.json.gz")
    assert not load_catalogue_lexicon(path).fallback
    assert load_catalogue_lexicon(resolve_catalogue_option("auto", items, tmp_path)).fallback
