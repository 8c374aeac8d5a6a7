"""Parsing and validation of the LLM's liked/disliked answer: lenient reading, strict checks, junk."""

import random
import string

import pytest

from graphrec.augmentation.parse import REASONS, Choice, Rejection, parse_choice

TITLES = ["Toy Story", "Heat", "The Matrix", "Alien", "Up"]


@pytest.mark.parametrize(
    "reply, like, dislike",
    [
        ('{"like": 2, "dislike": 4}', 1, 3),
        ('Sure! Here you go: {"like": "3", "dislike": "#1"}', 2, 0),
        ("{'liked': [5], 'disliked': [2]}", 4, 1),
        ('{"Like": "candidate 1", "Dislike": "[5]"}', 0, 4),
        ('{"favorite": "The Matrix", "least": "alien"}', 2, 3),
        ('{"like": 2.0, "dislike": "4. Alien"}', 1, 3),
        ('{"like": "Toy Story (1995)", "dislike": "Heat"}', 0, 1),
        ("I think the user would like 3 and dislike 5.", 2, 4),
        ("They would like least 4, but they would like 1 the most", 0, 3),
        ("[2] [5]", 1, 4),
    ],
)
def test_lenient_forms_are_read(reply, like, dislike):
    assert parse_choice(reply, TITLES) == Choice(like, dislike)


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("I cannot answer that.", "no_answer"),
        ('{"movie": 3}', "no_answer"),
        ('{"dislike": 2}', "missing_like"),
        ('{"like": 2}', "missing_dislike"),
        ('{"like": 0, "dislike": 2}', "not_a_candidate"),
        ('{"like": 6, "dislike": 2}', "not_a_candidate"),
        ('{"like": "Jaws", "dislike": 2}', "not_a_candidate"),
        ('{"like": [1, 2], "dislike": 3}', "not_a_candidate"),
        ('{"like": true, "dislike": 3}', "not_a_candidate"),
        ('{"like": 3, "dislike": "3"}', "same_item"),
        ('{"like": "Heat", "dislike": 2}', "same_item"),
    ],
)
def test_invalid_answers_are_rejected_with_their_reason(reply, reason):
    outcome = parse_choice(reply, TITLES)
    assert isinstance(outcome, Rejection) and outcome.reason == reason
    assert reason in REASONS


def test_ambiguous_title_fragment_is_not_guessed():
    titles = ["Star Wars", "Star Trek", "Heat"]
    outcome = parse_choice('{"like": "Star", "dislike": "Heat"}', titles)
    assert outcome == Rejection("not_a_candidate", outcome.detail)


def test_fuzzed_junk_never_crashes_and_every_choice_is_valid():
    rng = random.Random(7)
    alphabet = string.printable + "{}[]\":,'#ñé€"
    fragments = [
        '{"like": ',
        '"dislike": ',
        "}",
        "{",
        "[",
        "]",
        "like ",
        "dislike ",
        "least ",
        ",",
        "1",
        "3",
        "4",
        "12",
        "-1",
        "null",
        "NaN",
        "1e3",
        '"Heat"',
        "\\",
        '"',
        "\n",
    ]
    accepted = 0
    for _ in range(3000):
        if rng.random() < 0.5:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        else:
            text = "".join(rng.choice(fragments) for _ in range(rng.randint(1, 12)))
        outcome = parse_choice(text, TITLES)
        assert isinstance(outcome, (Choice, Rejection)), text
        if isinstance(outcome, Choice):
            accepted += 1
            assert 0 <= outcome.like < len(TITLES) and 0 <= outcome.dislike < len(TITLES)
            assert outcome.like != outcome.dislike
        else:
            assert outcome.reason in REASONS
    assert 0 < accepted < 3000  # the fragment mix produces both kinds
