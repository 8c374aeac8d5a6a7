"""Schemas (shipped and invalid) and the text helpers (normalisation, evidence, chunking)."""

from __future__ import annotations

import pytest

from kg.errors import SchemaError
from kg.schema import available_schemas, load_schema
from kg.text import EvidenceIndex, chunk_text, clean_text, normalize_name


def test_shipped_schemas_load():
    assert {"films", "products"} <= set(available_schemas())
    films = load_schema("films")
    assert films.item_type == "Film"
    for rel in (
        "directed_by",
        "starring",
        "written_by",
        "genre",
        "keyword",
        "production_company",
        "set_in",
        "based_on",
        "original_language",
    ):
        assert films.target_types(rel), rel
    assert films.canonical_relation("Themes") == "keyword"
    assert films.canonical_relation("Directed By") == "directed_by"
    assert films.canonical_value("Genre", "sci-fi") == "Science Fiction"
    assert films.canonical_value("Language", "en") == "English"
    assert films.canonical_value("Genre", "Space Opera") is None
    products = load_schema("products")
    assert products.item_type == "Product"
    assert {"brand", "category", "material", "feature"} <= set(products.item_relations())


def test_fingerprint_changes_with_content(tmp_path):
    src = load_schema("films").path
    text = open(src, encoding="utf-8").read()
    other = tmp_path / "films2.yaml"
    other.write_text(text.replace("a theme, subject or motif", "a motif"), encoding="utf-8")
    assert load_schema(other).fingerprint() != load_schema("films").fingerprint()


@pytest.mark.parametrize(
    "body, field",
    [
        (
            "name: x\nversion: 1\nitem_type: Film\nentity_types: {Film: f}"
            "\nrelations: {r: {}}\npatterns: [[Film, r, Nope]]\n",
            "patterns[0]",
        ),
        (
            "name: x\nversion: 1\nitem_type: Film\nentity_types: {Film: f}\nrelations: {r: {}}\n",
            "patterns",
        ),
        (
            "name: x\nversion: 1\nitem_type: Nope\nentity_types: {Film: f}"
            "\nrelations: {r: {}}\npatterns: [[Film, r, Film]]\n",
            "item_type",
        ),
        (
            "name: x\nversion: 1\nitem_type: Film\nentity_types: {Film: f}"
            "\nrelations: {r: {synonyms: 3}}\npatterns: [[Film, r, Film]]\n",
            "relations.r.synonyms",
        ),
        (
            "name: x\nversion: 1\nitem_type: Film\nentity_types: {Film: f}"
            "\nrelations: {r: {}}\npatterns: [[Film, r, Film]]\ncolour: red\n",
            "colour",
        ),
    ],
)
def test_bad_schema_names_file_and_field(tmp_path, body, field):
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        load_schema(path)
    assert str(path) in str(err.value) and f"field '{field}'" in str(err.value)


def test_invalid_yaml_has_a_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nrelations: [\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"bad.yaml:\d+"):
        load_schema(path)


def test_unknown_schema_name():
    with pytest.raises(SchemaError, match="films"):
        load_schema("nonexistent")


def test_normalize_name():
    assert normalize_name("  Spider-Man\u00a0 ") == "spider man"
    assert normalize_name("ＡＢＣ") == "abc"  # NFKC folds full-width letters
    assert normalize_name("O'Brien's") == normalize_name("O Brien s")


@pytest.mark.parametrize(
    "value, ok",
    [
        ("Buzz Lightyear", True),
        ("toy", True),
        ("Andy's birthday", True),
        ("birthdays", True),
        ("Lightyaer", True),
        ("Paris", False),
        ("Woody Allen", False),
        ("", False),
        ("the", False),
        ("José", True),
    ],
)
def test_evidence(value, ok):
    text = "Led by Woody, Andy's toys live happily until Andy's birthday brings Buzz Lightyear and Jose onto the scene."
    assert EvidenceIndex(text).supports(value) is ok


def test_chunking_of_a_100kb_text():
    sentence = "The crew of the Nostromo wakes early in deep space. "
    text = sentence * (100_000 // len(sentence))
    chunks = chunk_text(text, 2000, 200)
    assert len(chunks) > 40
    assert all(len(c) <= 2000 for c in chunks)
    assert all(c.endswith(".") for c in chunks[:-1])  # cut at sentence ends
    assert chunk_text("short", 2000) == ["short"]


def test_clean_text_handles_bytes_and_controls():
    assert clean_text(b"caf\xe9 \x00ok") == "caf\ufffd ok"
    assert clean_text(None) == ""
    assert clean_text("a\tb\n\nc") == "a b c"
