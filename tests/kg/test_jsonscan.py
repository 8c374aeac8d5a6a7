"""The one JSON scanner (kg.llm.jsonscan) answers as the four hand-written scanners it replaced.

The reference functions below are verbatim copies of the old scanners (``hf._close_point``,
``parse._scan_truncation`` (bounds made parameters), ``structured.segment_values`` and
``safejson.nesting``): tricky
inputs and a seeded random sample must give the same answers from both.
"""

from __future__ import annotations

import json
import random
import re
from collections import deque

import pytest

from kg.llm import jsonscan, safejson
from kg.parse import _MAX_REPAIRS, MAX_NESTING

# -- the old scanners, kept as oracles -------------------------------------------------


def old_close_point(text: str) -> int | None:
    depth = 0
    in_str = esc = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


_OLD_STRUCTURE_RE = re.compile(r'[\\"{}\[\]]')


def old_nesting(text: str) -> int:
    depth = peak = 0
    in_str = False
    skip = -1
    for match in _OLD_STRUCTURE_RE.finditer(text):
        pos = match.start()
        if pos == skip:
            continue
        ch = match.group()
        if in_str:
            if ch == "\\":
                skip = pos + 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
            if depth > peak:
                peak = depth
        elif ch in "}]":
            depth = depth - 1 if depth else 0
    return peak


_OLD_TRUNCATION_RE = re.compile(r'[\\"{}\[\],]')


def old_scan_truncation(
    s: str, keep: int = _MAX_REPAIRS, max_depth: int = MAX_NESTING
) -> list[tuple[int, str]]:
    cuts: deque[tuple[int, str]] = deque(maxlen=keep)
    closers = ""
    in_str = False
    skip = -1
    for match in _OLD_TRUNCATION_RE.finditer(s):
        i = match.start()
        if i == skip:
            continue
        ch = match.group()
        if in_str:
            if ch == "\\":
                skip = i + 1
            elif ch == '"':
                in_str = False
                if closers[:1] == "]":
                    cuts.append((i + 1, closers))
            continue
        if ch == '"':
            in_str = True
        elif ch == "{" or ch == "[":
            closers = ("}" if ch == "{" else "]") + closers
            if len(closers) > max_depth:
                return []
        elif ch == "}" or ch == "]":
            closers = closers[1:]
            cuts.append((i + 1, closers))
        elif ch == ",":
            cuts.append((i, closers))
    return list(cuts)


_OLD_STRING_RE = re.compile(r'"((?:[^"\\\n]|\\.){1,120})"')


def old_segment_values(text: str, max_values: int) -> tuple[list[str], bool]:
    in_str = esc = False
    end = len(text)
    closed = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            elif ch == "\n":
                end = i
                break
        elif ch == '"':
            in_str = True
        elif ch in "]}":
            end, closed = i, True
            break
    values: list[str] = []
    for match in _OLD_STRING_RE.finditer(text[:end]):
        try:
            value = json.loads(f'"{match.group(1)}"').strip()
        except json.JSONDecodeError:
            continue
        if value and value not in values:
            values.append(value)
    return values[:max_values], closed


# -- inputs -------------------------------------------------------------------------------

TRICKY = [
    "",
    "{}",
    "[]",
    '{"a": 1}',
    '{"a": "}"} tail',
    '{"a": "\\"}"} tail',  # an escaped quote, then a bracket inside the string
    '{"a": "\\\\"} tail',  # an escaped backslash ends the string right after
    '{"a": "\\\\\\"]"}',
    '["x", "y"], "z"]',
    '"a", "b\\"c", "d"] rest',
    '"a", "b\ncut", "c"]',  # a raw newline inside a string
    '"a", "b\\\ncut"]',  # an escaped newline
    '"a", "b"} and more',
    '}{"a": 1}',  # a stray closer first
    '{"a": [1, 2, {"b": "c"}], "d": ',  # truncated
    '{"facts": [{"relation": "genre", "tail": "Drama"}, {"relation": "keyword", "ta',
    '[[[[["deep"]]]]]',
    "[" * 40 + "]" * 40,
    '{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
    'prose {"x": ["a", "b"]} more prose {"y": 2}',
    '```json\n{"genre": ["Drama", "Crime"]}\n```',
    '"unterminated',
    '\\"{}',  # a backslash outside strings means nothing
    '{"k": "v\\u005d"}',
    "{]",
    "[}",
    '"Buzz Lightyear", "Woody", "Andy"',
    '"Buzz Lightyear", "Buzz Lightyear", "Buzz Lightyear"',
]


def _random_texts(n: int, seed: int = 16) -> list[str]:
    rng = random.Random(seed)
    alphabet = list('{}[],:"\\\n ab1') + ['\\"', '\\\\', '"x"', ", "]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(n)]


CASES = TRICKY + _random_texts(3000)


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_inputs_scan_as_before(text):
    assert jsonscan.close_point(text) == old_close_point(text)
    assert jsonscan.nesting(text) == old_nesting(text)
    assert safejson.nesting(text) == old_nesting(text)  # the public name graphrec uses
    assert jsonscan.truncation_cuts(text, _MAX_REPAIRS, MAX_NESTING) == old_scan_truncation(text)
    for max_values in (1, 5):
        assert jsonscan.list_values(text, max_values) == old_segment_values(text, max_values)


def test_random_inputs_scan_as_before():
    for text in CASES:
        assert jsonscan.close_point(text) == old_close_point(text), text
        assert jsonscan.nesting(text) == old_nesting(text), text
        assert jsonscan.truncation_cuts(text, 7, 6) == old_scan_truncation(text, 7, 6), text
        assert jsonscan.list_values(text, 3) == old_segment_values(text, 3), text


def test_scan_reports_both_string_ends_and_characters_inside_strings():
    text = '{"a\\"b": "x\ny"}'
    events = list(jsonscan.scan(text, '{}"', "\n"))
    assert events == [
        (0, "{", False),
        (1, '"', False),
        (6, '"', True),  # the escaped quote at 4 is not an end
        (9, '"', False),
        (11, "\n", True),
        (13, '"', True),
        (14, "}", False),
    ]


def test_specific_answers():
    assert jsonscan.close_point('{"a": "}"} tail') == 10
    assert jsonscan.close_point('}{"a": 1}') is None  # a stray closer first: never closes
    assert jsonscan.nesting('{"a": "[[[["}') == 1
    assert jsonscan.list_values('"a", "b\\"c", "d"] rest', 5) == (["a", 'b"c', "d"], True)
    assert jsonscan.list_values('"a", "b\ncut"]', 5) == (["a"], False)
    assert jsonscan.truncation_cuts('{"a": [1, 2', 10, 32) == [(8, "]}")]  # the comma after 1
    assert jsonscan.truncation_cuts("[" * 5, 10, 4) == []  # deeper than max_depth
