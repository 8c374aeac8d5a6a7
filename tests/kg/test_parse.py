"""Lenient parsing: every shape small models produce, truncation salvage, and a fuzz test."""

from __future__ import annotations

import json
import random
import string

import pytest

from kg.parse import Candidate, parse_output


def pairs(result):
    return [(c.relation, c.tail) for c in result.candidates]


@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            '{"genre": ["Drama"], "keyword": ["grief", "sea"]}',
            [("genre", "Drama"), ("keyword", "grief"), ("keyword", "sea")],
        ),
        ('{"facts": [{"relation": "set_in", "tail": "Maine"}]}', [("set_in", "Maine")]),
        (
            '[{"predicate": "starring", "object": "Tom Hanks", "type": "Person"}]',
            [("starring", "Tom Hanks")],
        ),
        ('[["genre", "Comedy"], ["keyword", "toy"]]', [("genre", "Comedy"), ("keyword", "toy")]),
        (
            'Sure! Here you go:\n```json\n{"set_in": "Paris"}\n```\nHope it helps.',
            [("set_in", "Paris")],
        ),
        (
            '{"keyword": "love, war, peace"}',
            [("keyword", "love"), ("keyword", "war"), ("keyword", "peace")],
        ),
        (
            '{"features_character": [{"name": "Woody", "type": "Character"}]}',
            [("features_character", "Woody")],
        ),
        ('{"set_in_period": 1920}', [("set_in_period", "1920")]),
    ],
)
def test_shapes(raw, expected):
    result = parse_output(raw)
    assert result.ok
    assert pairs(result) == expected


def test_truncated_output_keeps_complete_facts():
    raw = '{"genre": ["Drama"], "keyword": ["grief", "friendship", "the se'
    result = parse_output(raw)
    assert result.ok and result.repaired
    assert pairs(result) == [("genre", "Drama"), ("keyword", "grief"), ("keyword", "friendship")]


def test_prose_around_several_objects():
    raw = 'first {"genre": ["Drama"]} and then {"set_in": ["Rome"]} done'
    assert pairs(parse_output(raw)) == [("genre", "Drama"), ("set_in", "Rome")]


def test_types_are_carried():
    result = parse_output('[{"relation": "starring", "tail": "X", "type": "Person"}]')
    assert result.candidates == [Candidate("starring", "X", "Person")]


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "I cannot help with that.", "{{{{", "]]]", "null", "42", '"text"']
)
def test_junk_is_counted_not_raised(raw):
    result = parse_output(raw)
    assert not result.candidates
    assert result.error in ("empty_output", "no_json") or result.ok


def test_output_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    raw = f'{{"keyword": ["__import__(\'pathlib\').Path(\'{marker}\').touch()"]}}'
    result = parse_output(raw)
    assert not marker.exists()
    assert result.candidates[0].tail.startswith("__import__")


ADVERSARIAL = [
    "{" * 5000,
    "[" * 5000 + "]" * 10,
    '{"a": ' * 3000,
    '{"keyword": [' + ", ".join(['"x"'] * 5000) + "]}",
    '{"k": "\\ud800"}',
    '{"k": "' + "\\" * 999 + '"}',
    "\x00\x01\x02{\"genre\": [\"Drama\"]}\x00",
    '{"genre": ["Drama"], "genre": ["Comedy"]}',
    '{"keyword": [1, 2.5, true, null, {}, [], ["a", ["b"]]]}',
    "```json\n```",
    "```" * 100,
    '{"relation": {"relation": {"relation": "x"}}}',
    "\ufeff" + '{"set_in": ["Rome"]}',
    '{"facts": "not a list"}',
    json.dumps({"r": ["x" * 100000]}),
]


@pytest.mark.parametrize("raw", ADVERSARIAL)
def test_adversarial_outputs(raw):
    result = parse_output(raw)
    assert isinstance(result.candidates, list)
    assert len(result.candidates) <= 500
    assert all(isinstance(c.tail, str) and isinstance(c.relation, str) for c in result.candidates)


def _mutate(rng: random.Random, s: str) -> str:
    ops = rng.randint(1, 6)
    chars = list(s)
    for _ in range(ops):
        op = rng.random()
        pos = rng.randint(0, len(chars)) if chars else 0
        if op < 0.3 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.6:
            chars.insert(pos, rng.choice('{}[]",:\\ \n' + string.ascii_letters))
        elif op < 0.8:
            chars = chars[: rng.randint(0, len(chars))]
        else:
            chars.insert(pos, chr(rng.randint(0, 0x2FFF)))
    return "".join(chars)


def test_fuzz_random_and_mutated_outputs():
    rng = random.Random(1234)
    seeds = [
        '{"genre": ["Drama"], "keyword": ["grief", "sea"], "set_in": ["Maine"]}',
        '[{"relation": "starring", "tail": "Tom Hanks"}]',
        '[["genre", "Comedy"]]',
    ]
    for i in range(3000):
        if i % 3 == 0:
            raw = "".join(chr(rng.randint(0, 0x7F)) for _ in range(rng.randint(0, 200)))
        else:
            raw = _mutate(rng, rng.choice(seeds))
        result = parse_output(raw)  # must never raise
        for c in result.candidates:
            assert isinstance(c.relation, str) and isinstance(c.tail, str) and c.tail
