"""Lenient parsing and strict validation of the LLM's (liked, disliked) answer.

The model is asked for ``{"like": <n>, "dislike": <n>}`` with 1-based candidate
numbers.  Small models drift, so parsing accepts what a reader would: other key
spellings (``liked``, ``favorite``, ``least``...), numbers as strings, lists,
``#3``/``[3]``, a candidate's title instead of its number, prose such as
"I think they would like 3 and dislike 7", or LLMRec's bare ``[3] [7]``.
Validation is strict: both answers must name candidates of the list, and two
different ones.  A rejected answer is never repaired by guessing; its reason is
counted (:data:`REASONS`).

Replies are untrusted data: :func:`parse_choice` never raises.  A reply longer than
:data:`MAX_REPLY_CHARS`, nested deeper than 32 brackets or holding a number of more
than 100 digits is rejected (``no_answer``, with the bound in the detail) before any
JSON or regular-expression work (:mod:`kg.llm.safejson`), and every pattern used on
reply text runs in linear time, so no reply can wedge a run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kg.llm import safejson

#: rejection reasons, in the order they are checked
REASONS = ("empty", "no_answer", "missing_like", "missing_dislike", "not_a_candidate", "same_item")

_LIKE_KEYS = {
    "like",
    "liked",
    "likes",
    "favorite",
    "favourite",
    "best",
    "positive",
    "pos",
    "most",
    "most_liked",
    "like_most",
    "prefer",
    "preferred",
    "recommend",
    "recommended",
    "yes",
    "would_like",
}
_DISLIKE_KEYS = {
    "dislike",
    "disliked",
    "dislikes",
    "least",
    "least_liked",
    "like_least",
    "worst",
    "negative",
    "neg",
    "not_like",
    "wouldnt_like",
    "would_not_like",
    "hate",
    "no",
    "avoid",
}
#: longest reply parsed (characters); answers are a few dozen
MAX_REPLY_CHARS = 16_000
_LIMITS = safejson.Limits(max_chars=MAX_REPLY_CHARS, max_depth=32, max_digits=100, max_attempts=64)
# The two number patterns run on whitespace-collapsed, stripped text (one space between
# tokens), so each optional space is one bounded choice: no ``\s*\s*`` backtracking,
# which took minutes on a value holding a long run of spaces.
_NUMBER_RE = re.compile(
    r"^(?:(?:candidate|movie|item|number|no\.?|#) ?)?[\[(#]? ?(\d{1,4}) ?[\])]? ?[.:)]?$",
    re.IGNORECASE,
)
_LEADING_NUMBER_RE = re.compile(r"^[\[(#]? ?(\d{1,4}) ?[\])]?[.:)]? \S")
_NUMBER_MAX_CHARS = (
    40  # longer (collapsed) values cannot match _NUMBER_RE; _LEADING_NUMBER_RE reads a prefix
)
_PROSE_LIKE_RE = re.compile(
    r"(?<![\w-])(?<!dis)(?<!not )(?<!n't )"
    r"(?:like|liked|likes|favou?rite|prefer\w*|best|most)\b[^\d\n]{0,30}?(\d{1,4})\b",
    re.IGNORECASE,
)
_PROSE_DISLIKE_RE = re.compile(
    r"\b(?:dislike[sd]?|least|worst|not like|n't like|hate[sd]?|avoid)\b[^\d\n]{0,30}?(\d{1,4})\b",
    re.IGNORECASE,
)
_BRACKETED_RE = re.compile(r"\[\s*(\d{1,4})\s*\]")


@dataclass(frozen=True)
class Choice:
    """A validated answer: 0-based positions of the liked and disliked candidates."""

    like: int
    dislike: int


@dataclass(frozen=True)
class Rejection:
    """An answer that failed validation; ``reason`` is one of :data:`REASONS`."""

    reason: str
    detail: str = ""


def _normalise_key(key: str) -> str:
    return re.sub(r"[^a-z_]", "", re.sub(r"[\s-]+", "_", key.strip().lower().replace("'", "")))


def _first_json_object(text: str) -> dict | None:
    """The first ``{...}`` of ``text`` that parses as a JSON object (single quotes accepted).

    ``text`` has passed :func:`kg.llm.safejson.check`; the search is bounded and linear
    (:func:`kg.llm.safejson.iter_values`): a run of ``{`` cannot make it quadratic.
    """
    # single quotes are a common small-model slip
    variants = [text, text.replace("'", '"')] if "'" in text else [text]
    for value, _, _ in safejson.iter_values(variants, "{", _LIMITS):
        if isinstance(value, dict):
            return value
    return None


class _NotACandidate(Exception):
    pass


def _resolve(value: Any, titles: Sequence[str]) -> int:
    """0-based candidate position named by ``value`` (a number, a list of one, a title)."""
    n = len(titles)
    if isinstance(value, list):
        if len(value) != 1:
            raise _NotACandidate(f"a list of {len(value)} values")
        value = value[0]
    if isinstance(value, bool) or value is None:
        raise _NotACandidate(repr(value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if 1 <= value <= n:
            return value - 1
        raise _NotACandidate(f"number {value} outside 1-{n}")
    if isinstance(value, str):
        compact = " ".join(value.split())
        match = (
            _NUMBER_RE.match(compact) if len(compact) <= _NUMBER_MAX_CHARS else None
        ) or _LEADING_NUMBER_RE.match(compact[:_NUMBER_MAX_CHARS])
        if match:
            return _resolve(int(match.group(1)), titles)
        wanted = _casefold_title(value)
        if wanted:
            exact = [i for i, t in enumerate(titles) if _casefold_title(t) == wanted]
            if len(exact) == 1:
                return exact[0]
            partial = [i for i, t in enumerate(titles) if wanted in _casefold_title(t)]
            if len(partial) == 1 and len(wanted) >= 4:
                return partial[0]
        raise _NotACandidate(f"{value[:60]!r} names no single candidate")
    raise _NotACandidate(f"a {type(value).__name__}")


def _casefold_title(text: str) -> str:
    text = re.sub(r"\(\d{4}\)", " ", str(text))
    return " ".join(re.findall(r"\w+", text.casefold()))


def parse_choice(text: str, titles: Sequence[str]) -> Choice | Rejection:
    """Parse and validate a reply against the candidate ``titles`` (in prompt order).

    Returns a :class:`Choice` when the reply names two different candidates, else a
    :class:`Rejection` with the first failing reason; never raises.  A reply past the
    bounds (size, nesting, number length) is ``no_answer`` with the bound as detail.
    """
    if text is None:
        return Rejection("empty")
    text = text if isinstance(text, str) else str(text)
    if len(text) <= MAX_REPLY_CHARS and not text.strip():
        return Rejection("empty")
    problem = safejson.check(text, _LIMITS)
    if problem is not None:  # before any JSON or regular-expression work
        return Rejection("no_answer", f"unreadable reply: {problem}")
    like_raw: Any = None
    dislike_raw: Any = None
    obj = _first_json_object(text)
    if obj is not None:
        for key, value in obj.items():
            norm = _normalise_key(str(key))
            if norm in _DISLIKE_KEYS and dislike_raw is None:
                dislike_raw = value
            elif norm in _LIKE_KEYS and like_raw is None:
                like_raw = value
    if like_raw is None and dislike_raw is None:
        dislike_match = _PROSE_DISLIKE_RE.search(text)
        # "would like least 4" / "least liked 4" are dislikes: a like match overlapping it is skipped
        like_match = next(
            (
                m
                for m in _PROSE_LIKE_RE.finditer(text)
                if dislike_match is None
                or m.end() <= dislike_match.start()
                or m.start() >= dislike_match.end()
            ),
            None,
        )
        like_raw = int(like_match.group(1)) if like_match else None
        dislike_raw = int(dislike_match.group(1)) if dislike_match else None
        if like_raw is None and dislike_raw is None:
            bracketed = _BRACKETED_RE.findall(text)
            if len(bracketed) == 2:  # LLMRec's answer format: "[liked] [disliked]"
                like_raw, dislike_raw = int(bracketed[0]), int(bracketed[1])
    if like_raw is None and dislike_raw is None:
        return Rejection("no_answer", text[:80])
    if like_raw is None:
        return Rejection("missing_like")
    if dislike_raw is None:
        return Rejection("missing_dislike")
    try:
        like = _resolve(like_raw, titles)
        dislike = _resolve(dislike_raw, titles)
    except _NotACandidate as exc:
        return Rejection("not_a_candidate", str(exc))
    if like == dislike:
        return Rejection("same_item", f"candidate {like + 1}")
    return Choice(like, dislike)
