"""Lenient parsing of model output into candidate facts.

Small local models produce JSON wrapped in prose or code fences, truncated at the
token limit, as a bare list, as ``{"facts": [...]}``, as relation -> values maps or
as lists of pairs.  :func:`parse_output` salvages every complete fact it can find and
never raises: junk comes back as zero candidates with an error label (see
:attr:`ParseResult.error`).  Output is treated as data: it is only ever
``json``-decoded, never evaluated, and it is bounded first (:mod:`kg.llm.safejson`):
longer than :data:`MAX_OUTPUT_CHARS`, nested deeper than :data:`MAX_NESTING` or
holding a number of more than :data:`MAX_NUMBER_DIGITS` digits, it is rejected
before any decoding, and every scan is linear, so no reply can wedge a build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from kg.llm import jsonscan, safejson

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.DOTALL)
_WRAPPER_KEYS = (
    "facts",
    "triples",
    "relations",
    "result",
    "results",
    "output",
    "data",
    "entities",
    "answer",
    "json",
)
_REL_KEYS = ("relation", "predicate", "rel", "r", "property", "relationship", "type_of_relation")
_TAIL_KEYS = ("tail", "object", "value", "values", "t", "name", "target", "entity", "o")
_TYPE_KEYS = ("type", "tail_type", "object_type", "entity_type", "target_type", "label")
#: keys stating whom a fact is about, kept so validation can prune facts about another item: in a
#: fact object ({"subject": s, "relation": r, "object": o}) and in a relation -> values map, where
#: "subject" is a synonym of a relation (keyword) and so cannot name the subject
_FACT_SUBJECT_KEYS = (
    "subject",
    "head",
    "h",
    "s",
    "item",
    "film",
    "movie",
    "product",
    "book",
    "title",
)
_MAP_SUBJECT_KEYS = ("head", "item", "film", "movie", "product", "title")
_MAX_DEPTH = 6
_MAX_CANDIDATES = 500  # a runaway generation cannot flood the graph
#: longest model output parsed (characters); a reply is a few hundred
MAX_OUTPUT_CHARS = 20_000
#: deepest bracket nesting parsed; legitimate answers are 2-3 levels deep
MAX_NESTING = 32
#: longest run of digits parsed (``int()`` of a 5,000-digit string raises)
MAX_NUMBER_DIGITS = 100
_LIMITS = safejson.Limits(
    max_chars=MAX_OUTPUT_CHARS, max_depth=MAX_NESTING, max_digits=MAX_NUMBER_DIGITS
)
_MAX_REPAIRS = 200  # cut points tried when closing truncated output
#: error labels of :class:`ParseResult` (``output_<label>`` in build statistics)
ERRORS = ("empty_output", "too_long", "too_deep", "number_too_long", "no_json")


@dataclass(frozen=True)
class Candidate:
    """One fact proposed by the model, before validation (relation not yet canonical)."""

    relation: str
    tail: str
    tail_type: str | None = None
    subject: str | None = None  # whom the reply says the fact is about (None: not stated)


@dataclass
class ParseResult:
    """Candidates found in one model output.

    ``ok`` is true when at least one JSON value was decoded (possibly after repair);
    ``repaired`` tells that truncated output was closed to salvage complete facts.
    ``error`` (when not ``ok``) is one of :data:`ERRORS`: ``empty_output``,
    ``too_long`` / ``too_deep`` / ``number_too_long`` (refused before decoding) or
    ``no_json``.
    """

    candidates: list[Candidate] = field(default_factory=list)
    ok: bool = False
    repaired: bool = False
    error: str | None = None


def _repair(s: str) -> Any | None:
    """Close a truncated JSON document at the last point where it is complete.

    Cut points are tried from the last; a syntax error inside the kept prefix rules
    out every longer cut too (JSON is read left to right), so those are skipped, and
    the characters decoded in all are bounded by a budget: linear in ``len(s)``.
    """
    start = min((i for i in (s.find("{"), s.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    body = s[start:]
    budget = 4 * len(body) + 1024
    limit = len(body) + 1  # cuts whose kept prefix is at least this long are known to fail
    stripped = (
        -1,
        -1,
        0,
    )  # cut points in (lo, hi] all strip back to the same end (a run of "," / spaces)
    for pos, closers in reversed(jsonscan.truncation_cuts(body, _MAX_REPAIRS, MAX_NESTING)):
        lo, hi, end = stripped
        if not lo < pos <= hi:  # strip each run once: rstrip over a long run per cut is quadratic
            end = len(body[:pos].rstrip().rstrip(","))
            stripped = (end, pos, end)
        if end >= limit:
            continue
        prefix = body[:end]
        candidate = prefix + closers
        budget -= len(candidate)
        if budget < 0:
            break
        try:
            # a prefix of checked text plus at most MAX_NESTING closers: within the bounds
            return safejson.decode(candidate, _LIMITS)
        except safejson.Rejected as exc:
            if exc.position is not None and exc.position < len(prefix):
                limit = min(limit, exc.position + 1)
            continue
    return None


def _decode_all(s: str) -> list[Any]:
    """Every top-level JSON object/array embedded in ``s`` (prose around it is ignored)."""
    return [value for value, _, _ in safejson.iter_values(s, "{[", _LIMITS)]


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _first(d: dict, keys: tuple[str, ...]) -> Any:
    lowered = {str(k).casefold(): v for k, v in d.items()}
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


def _interpret(
    value: Any, out: list[Candidate], relation: str | None = None, depth: int = 0
) -> None:
    if depth > _MAX_DEPTH or len(out) >= _MAX_CANDIDATES:
        return
    if isinstance(value, dict):
        first = len(out)
        is_fact = _first(value, _REL_KEYS) is not None and _first(value, _TAIL_KEYS) is not None
        _interpret_dict(value, out, relation, depth)
        subject = _as_text(_first(value, _FACT_SUBJECT_KEYS if is_fact else _MAP_SUBJECT_KEYS))
        if subject is not None:  # {"subject": s, ...}: every fact found inside is stated about s
            out[first:] = [c if c.subject else replace(c, subject=subject) for c in out[first:]]
        return
    if isinstance(value, list):
        if relation is None and 2 <= len(value) <= 3 and all(_as_text(v) for v in value):
            # a bare pair/triple: [relation, tail] / [relation, tail, type] / [head, relation, tail]
            parts = [_as_text(v) for v in value]
            if len(parts) == 2:
                out.append(Candidate(parts[0], parts[1]))  # type: ignore[arg-type]
            else:
                out.append(Candidate(parts[0], parts[1], parts[2]))  # type: ignore[arg-type]
                # head-first reading: the head is the stated subject
                out.append(Candidate(parts[1], parts[2], subject=parts[0]))  # type: ignore[arg-type]
            return
        for element in value:
            _interpret(element, out, relation, depth + 1)
        return
    if relation is not None:
        text = _as_text(value)
        if text is not None:
            out.append(Candidate(relation, text))


def _interpret_dict(value: dict, out: list[Candidate], relation: str | None, depth: int) -> None:
    rel = _as_text(_first(value, _REL_KEYS))
    tail = _first(value, _TAIL_KEYS)
    if rel is not None and tail is not None:  # {"relation": r, "tail": t, "type": T}
        ttype = _as_text(_first(value, _TYPE_KEYS))
        _emit(rel, tail, ttype, out, depth)
        return
    if relation is not None and tail is not None:  # {"name": n, "type": T} under a relation key
        _emit(relation, tail, _as_text(_first(value, _TYPE_KEYS)), out, depth)
        return
    for key, sub in value.items():
        k = str(key)
        if k.casefold() in _MAP_SUBJECT_KEYS and _as_text(sub) is not None:
            continue  # the stated subject, not a relation
        if k.casefold() in _WRAPPER_KEYS and isinstance(sub, (list, dict)):
            _interpret(sub, out, relation, depth + 1)
        else:  # relation -> value(s)
            _interpret_values(k, sub, out, depth + 1)


def _interpret_values(relation: str, value: Any, out: list[Candidate], depth: int) -> None:
    if isinstance(value, list):
        for element in value:
            if isinstance(element, (dict, list)):
                _interpret(element, out, relation, depth + 1)
            else:
                text = _as_text(element)
                if text is not None and len(out) < _MAX_CANDIDATES:
                    out.append(Candidate(relation, text))
    elif isinstance(value, dict):
        _interpret(value, out, relation, depth + 1)
    else:
        text = _as_text(value)
        if text is not None:
            # "a, b, c" in one string is a list the model forgot to split
            parts = (
                [p.strip() for p in text.split(",")]
                if text.count(",") >= 1 and len(text) < 200
                else [text]
            )
            for part in parts:
                if part:
                    out.append(Candidate(relation, part))


def _emit(rel: str, tail: Any, ttype: str | None, out: list[Candidate], depth: int) -> None:
    if isinstance(tail, list):
        for t in tail:
            text = _as_text(t)
            if text is not None:
                out.append(Candidate(rel, text, ttype))
    elif isinstance(tail, dict):
        _interpret(tail, out, rel, depth + 1)
    else:
        text = _as_text(tail)
        if text is not None:
            out.append(Candidate(rel, text, ttype))


def parse_output(raw: str | None) -> ParseResult:
    """Extract candidate facts from raw model output; never raises.

    Junk comes back with ``ok`` false and ``error`` one of :data:`ERRORS`.
    """
    if raw is None:
        return ParseResult(error="empty_output")
    s = raw if isinstance(raw, str) else str(raw)
    if len(s) > MAX_OUTPUT_CHARS:  # before any other work, even strip()
        return ParseResult(error="too_long")
    s = s.strip()
    if not s:
        return ParseResult(error="empty_output")
    fenced = _FENCE_RE.findall(s) if "```" in s else []
    if fenced:
        s = "\n".join(fenced)
    problem = safejson.check(s, _LIMITS)
    if problem is not None:
        # legitimate answers are short, 2-3 levels deep and hold small numbers
        return ParseResult(error=problem.reason)
    values: list[Any] = []
    repaired = False
    try:
        values = [safejson.decode(s, _LIMITS)]
    except safejson.Rejected:
        values = _decode_all(s)
        if not values or not any(isinstance(v, dict) for v in values):
            fixed = _repair(s)
            if fixed is not None:
                values = [fixed]
                repaired = True
    if not values:
        return ParseResult(error="no_json")
    out: list[Candidate] = []
    for value in values:
        if isinstance(value, (dict, list)):
            _interpret(value, out)
    if not out and not any(isinstance(v, (dict, list)) for v in values):
        return ParseResult(error="no_json")
    return ParseResult(candidates=out[:_MAX_CANDIDATES], ok=True, repaired=repaired)
