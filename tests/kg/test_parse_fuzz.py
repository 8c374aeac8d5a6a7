"""kg.parse cannot be wedged: reported inputs, a seeded fuzz sample, and a build replaying a poisoned reply.

The sample is the first 2,000 inputs of ``benchmarks/robustness.py``'s stream (the
benchmark fuzzes 100,000 per parser).  Only declared outcomes are allowed: a
``ParseResult`` whose error label is one of ``kg.parse.ERRORS``.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import pytest
from fakes import FakeBackend
from helpers import write_items

from kg.build import run_build
from kg.data import read_items
from kg.llm.backends.base import Completion
from kg.llm.cache import ResponseCache
from kg.llm.journal import read_journal
from kg.parse import ERRORS, MAX_OUTPUT_CHARS, ParseResult, parse_output
from kg.resolve import ResolveConfig

REPO = Path(__file__).resolve().parents[2]
CI_SAMPLE = 2000
CI_BOUND_MS = (
    200  # per input; the benchmark's target is 50 ms, this leaves room for a loaded machine
)


def _robustness():
    spec = importlib.util.spec_from_file_location(
        "robustness_bench", REPO / "benchmarks" / "robustness.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(call, text) -> float:
    """Milliseconds of one call; a slow one is measured twice more (scheduler noise is not a blowup)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        call(text)
        best = min(best, (time.perf_counter() - start) * 1000)
        if best <= 50:
            break
    return best


REPORTED = {
    "5000-digit number": ('{"keyword": [' + "7" * 5000 + "]}", "number_too_long"),
    "4301-digit number": ("[" + "1" * 4301 + "]", "number_too_long"),
    "long digits in a string": (
        '{"keyword": ["' + "7" * 5000 + '"]}',
        "number_too_long",
    ),  # checked before decoding
    "deep nesting": ('{"keyword": ' + "[" * 5000 + "]" * 5000 + "}", "too_deep"),
    "run of braces": ("{" * 15_000, "too_deep"),
    "huge reply": ("[" * 100_000, "too_long"),
    "long string": ('{"keyword": ["' + "a" * (MAX_OUTPUT_CHARS + 1) + '"]}', "too_long"),
    "deep behind a stray quote": (
        '"' + '["]",' * 3000,
        "no_json",
    ),  # bounded attempts, then rejected
    "deep in a fence": ("```json\n" + "[" * 40 + '"x"', "too_deep"),
}


@pytest.mark.parametrize("raw, error", list(REPORTED.values()), ids=list(REPORTED))
def test_reported_inputs_are_declared_rejections(raw, error):
    assert timed(parse_output, raw) < CI_BOUND_MS
    result = parse_output(raw)
    assert not result.ok and result.error == error and result.candidates == []


def test_numbers_and_nesting_within_bounds_still_parse():
    result = parse_output(
        '{"release_year": [' + "9" * 100 + '], "keyword": [[[["sea"]]]], "genre": [1e999]}'
    )
    assert result.ok
    pairs = {(c.relation, c.tail) for c in result.candidates}
    assert ("release_year", "9" * 100) in pairs and ("genre", "inf") in pairs
    truncated = parse_output('Facts: {"keyword": ["grief", "sea"], "set_in": ["Mai')
    assert truncated.ok and truncated.repaired
    assert ("keyword", "sea") in {(c.relation, c.tail) for c in truncated.candidates}


def test_fuzzed_sample_gives_only_declared_outcomes_quickly():
    bench = _robustness()
    times = []
    for kind, text in bench.fuzz_inputs(CI_SAMPLE, seed=0):
        try:
            result = parse_output(text)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"undeclared {type(exc).__name__}: {exc} on {kind} input {text[:80]!r}")
        assert isinstance(result, ParseResult)
        assert result.ok or result.error in ERRORS, (kind, result.error)
        assert all(
            isinstance(c.relation, str) and isinstance(c.tail, str) and c.tail
            for c in result.candidates
        )
        ms = timed(parse_output, text)
        assert ms < CI_BOUND_MS, f"{ms:.0f} ms on {kind} input of {len(text)} chars: {text[:80]!r}"
        times.append(ms)
    assert statistics.median(times) < 2.0


def test_rerun_over_a_cache_of_poisoned_replies_finishes_cleanly(tmp_path, films_schema):
    """A reply that made the old parser raise is replayed from the cache: each item is an unparsed output."""
    items = read_items(write_items(tmp_path / "items.tsv"))
    cache_file = tmp_path / "cache.sqlite"
    no_emb = ResolveConfig(use_embeddings=False)
    run_build(
        items,
        films_schema,
        FakeBackend(),
        tmp_path / "first",
        None,
        no_emb,
        cache_path=cache_file,
        quiet=True,
    )
    poison = [
        '{"keyword": [' + "7" * 5000 + "]}",
        '{"keyword": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"keyword": ["' + " " * 3000 + 'x"]}',
        "{" * 3000,
        '{"keyword": ["sea"], "set_in": [' + "9" * 4400 + "]}",
    ]
    cache = ResponseCache(cache_file)
    keys = [row[0] for row in cache._db.execute("SELECT key FROM responses ORDER BY key")]
    assert len(keys) == 5
    for key, text in zip(keys, poison):
        cache.put(key, Completion(text, 1, 1, "stop"), "fake-1")
    cache.close()

    def no_calls(messages):  # every reply must come from the cache
        raise AssertionError("the rerun called the model")

    stats = run_build(
        items,
        films_schema,
        FakeBackend(no_calls),
        tmp_path / "second",
        None,
        no_emb,
        cache_path=cache_file,
        quiet=True,
    )
    assert stats.cache_hits == 5 and stats.calls == 0 and stats.items_done == 5
    assert (
        stats.outputs_unparsed == 4
    )  # the value padded with spaces is valid JSON: parsed, then validated
    assert (
        stats.rejections["output_number_too_long"] == 2 and stats.rejections["output_too_deep"] == 2
    )
    _, records = read_journal(tmp_path / "second" / "journal.text.jsonl")
    assert sum(r["status"] == "done" for r in records) == 5
    # and once more: everything journaled, nothing to do, still clean
    again = run_build(
        items,
        films_schema,
        FakeBackend(no_calls),
        tmp_path / "second",
        None,
        no_emb,
        cache_path=cache_file,
        quiet=True,
    )
    assert again.items_already_done == 6 and again.calls == 0
