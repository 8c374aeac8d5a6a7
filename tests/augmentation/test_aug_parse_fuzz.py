"""graphrec.augmentation.parse cannot be wedged: reported inputs, a seeded fuzz sample, a rerun over a poisoned cache.

The sample is the first 2,000 inputs of ``benchmarks/robustness.py``'s stream (the
benchmark fuzzes 100,000 per parser).  Only declared outcomes are allowed: a valid
``Choice`` or a ``Rejection`` whose reason is in ``REASONS``.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import pytest
from fakes import FakeBackend

from graphrec.augmentation.generate import GenerationSettings, generate_augmentation
from graphrec.augmentation.parse import MAX_REPLY_CHARS, REASONS, Choice, Rejection, parse_choice

REPO = Path(__file__).resolve().parents[2]
CI_SAMPLE = 2000
CI_BOUND_MS = (
    200  # per input; the benchmark's target is 50 ms, this leaves room for a loaded machine
)
TITLES = ["Toy Story", "Heat", "The Matrix", "Alien", "Up"]


def _robustness():
    spec = importlib.util.spec_from_file_location(
        "robustness_bench", REPO / "benchmarks" / "robustness.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(text, titles=TITLES) -> float:
    """Milliseconds of one parse; a slow one is measured twice more (scheduler noise is not a blowup)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        parse_choice(text, titles)
        best = min(best, (time.perf_counter() - start) * 1000)
        if best <= 50:
            break
    return best


REPORTED = {
    # minutes before: \s*\s*\s* backtracking in the candidate-number pattern
    "spaces in a value": ('{"like": "' + " " * 3000 + 'x", "dislike": 2}', "not_a_candidate"),
    "number then spaces": (
        '{"like": "3' + " " * 5000 + '", "dislike": "x' + " " * 5000 + '"}',
        "not_a_candidate",
    ),
    "run of braces": ("{" * 3000, "no_answer"),  # quadratic before
    "run of braces, shallow": ("{}" * 7000 + "{" * 20, "no_answer"),
    "5000-digit number": (
        '{"like": ' + "9" * 5000 + ', "dislike": 2}',
        "no_answer",
    ),  # ValueError before
    "deep nesting": (
        '{"like": ' + "[" * 5000 + "]" * 5000 + ', "dislike": 2}',
        "no_answer",
    ),  # RecursionError
    "deep behind a stray quote": ('"' + '{"like": [' * 3000, "no_answer"),
    "huge reply": ("I would like 1 and dislike 2 " * 1000, "no_answer"),
    "bracket then spaces": ("[" + " " * 10_000 + "1" + " " * 4000, "no_answer"),
    "prefer run": ("prefer" + "r" * 15_000 + " 3", "missing_dislike"),
}


@pytest.mark.parametrize("text, reason", list(REPORTED.values()), ids=list(REPORTED))
def test_reported_inputs_are_quick_declared_rejections(text, reason):
    assert timed(text, ["A", "B"]) < CI_BOUND_MS
    outcome = parse_choice(text, ["A", "B"])
    assert isinstance(outcome, Rejection) and outcome.reason == reason, outcome
    assert reason in REASONS


def test_bounds_are_named_in_the_detail():
    assert (
        "number_too_long"
        in parse_choice('{"like": ' + "9" * 5000 + ', "dislike": 2}', TITLES).detail
    )
    assert "too_deep" in parse_choice('{"like": ' + "[" * 100 + "]" * 100 + "}", TITLES).detail
    assert "too_long" in parse_choice(" x" * MAX_REPLY_CHARS, TITLES).detail


@pytest.mark.parametrize(
    "reply, like, dislike",
    [
        ('{"like": "  candidate   3 ", "dislike": "#  1"}', 2, 0),
        ('{"like": "\\t[ 4 ]\\n", "dislike": "No. 2"}', 3, 1),
        ('{"like": "4.   Alien", "dislike": "5 )  Up"}', 3, 4),
        ('{"like": 2, "dislike": 1e0}', 1, 0),
        ("I think they would like 3 and dislike 5." + " " * 5000, 2, 4),
        ("{'liked': [5], 'disliked': [2]}" + "{" * 30, 4, 1),
    ],
)
def test_lenient_forms_survive_the_linear_patterns(reply, like, dislike):
    assert parse_choice(reply, TITLES) == Choice(like, dislike)


def test_fuzzed_sample_gives_only_declared_outcomes_quickly():
    bench = _robustness()
    titles = bench.TITLES
    times = []
    for kind, text in bench.fuzz_inputs(CI_SAMPLE, seed=0):
        try:
            outcome = parse_choice(text, titles)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"undeclared {type(exc).__name__}: {exc} on {kind} input {text[:80]!r}")
        if isinstance(outcome, Choice):
            assert 0 <= outcome.like < len(titles) and 0 <= outcome.dislike < len(titles)
            assert outcome.like != outcome.dislike
        else:
            assert isinstance(outcome, Rejection) and outcome.reason in REASONS, (kind, outcome)
        ms = timed(text, titles)
        assert ms < CI_BOUND_MS, f"{ms:.0f} ms on {kind} input of {len(text)} chars: {text[:80]!r}"
        times.append(ms)
    assert statistics.median(times) < 2.0


POISON = [
    '{"like": ' + "9" * 5000 + ', "dislike": 2}',
    '{"like": ' + "[" * 5000 + "]" * 5000 + ', "dislike": 2}',
    '{"like": "' + " " * 3000 + 'x", "dislike": 2}',
    "{" * 3000,
]


def test_rerun_after_poisoned_replies_were_cached_finishes_cleanly(text_data, scorer, tmp_path):
    """Replies are cached before parsing: a rerun replays them from the cache and must finish, rejecting them."""
    settings = GenerationSettings(users=8, candidates=5, history=3, description_chars=20, seed=1)
    replies = iter(POISON)

    def poisoned(messages):
        return next(replies, '{"like": 1, "dislike": 2}')

    first = generate_augmentation(
        text_data,
        scorer,
        FakeBackend(replies=poisoned),
        tmp_path / "a.jsonl",
        settings,
        work_dir=tmp_path / "work",
        progress=False,
    )
    assert first.llm_calls == 8 and first.edges == 4
    assert first.rejected["no_answer"] == 3 and first.rejected["not_a_candidate"] == 1
    # as after a crash of the old parser: the replies are cached, the journal does not have the users
    (tmp_path / "work" / "journal.jsonl").unlink()

    def no_calls(messages):
        raise AssertionError("the rerun called the model")

    again = generate_augmentation(
        text_data,
        scorer,
        FakeBackend(replies=no_calls),
        tmp_path / "b.jsonl",
        settings,
        work_dir=tmp_path / "work",
        progress=False,
    )
    assert again.llm_calls == 0 and again.cache_hits == 8
    assert again.edges == 4 and again.rejected == first.rejected and again.failed == 0
