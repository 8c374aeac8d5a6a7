"""The structured decoder's list constraint (no model needed)."""

from __future__ import annotations

from kg.llm.backends.structured import ListConstraint


def test_extractive_values_must_be_spans_of_the_text():
    c = ListConstraint("A sailor named Tom Reed drifts to Lisbon.", None, max_values=3, used=set())
    assert c.valid('"Tom Reed", "Lisbon"]')
    assert c.valid('"Lis')  # an unfinished value that can still become a span
    assert not c.valid('"Paris"')
    assert not c.valid('"Tom Reed", "Lisbon", "sailor", "drifts"')  # more than max_values


def test_open_lists_never_repeat_values_given_under_earlier_keys():
    c = ListConstraint(
        "A sailor named Tom Reed drifts to Lisbon.", None, max_values=3, used={"lisbon"}
    )
    assert not c.valid('"Lisbon"')
    assert c.valid('"sailor"')


def test_closed_vocabulary_ignores_earlier_keys():
    # "comedy" given as a keyword is still the genre Comedy
    c = ListConstraint(
        "A dark comedy.", ["Comedy", "comedy", "Drama"], max_values=3, used={"comedy"}
    )
    assert c.valid('"comedy"]')
    assert not c.valid('"Drama"')  # a choice, but not in the text


def test_closed_vocabulary_unfinished_values_stay_on_token_boundaries():
    # tokens: Document|ary and D|rama: '"D' is a boundary of "Drama" only, and "Drama"
    # is not in the text, so '"D' must be refused rather than strand the value
    c = ListConstraint(
        "A documentary about fashion week.",
        ["Documentary", "documentary", "Drama"],
        3,
        set(),
        boundaries={"document", "documentary"},
    )
    assert c.valid('"Document')
    assert c.valid('"documentary"]')
    assert not c.valid('"D')
    assert not c.valid('"Doc')
    assert c.possible()
    assert not ListConstraint("A western.", ["Drama"], 3, set()).possible()
