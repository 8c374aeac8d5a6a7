"""Lenient parsing of model output into candidate facts.

Small local models produce JSON wrapped in prose or code fences, truncated at the
token limit, as a bare list, as ``{"facts": [...]}``, as relation -> values maps or
as lists of pairs.  :func:`parse_output` salvages every complete fact it can find and
never raises: junk comes back as zero candidates with an error label.  Output is
treated as data: it is only ever ``json``-decoded, never evaluated.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.DOTALL)
_WRAPPER_KEYS = ("facts", "triples", "relations", "result", "results", "output", "data", "entities", "answer", "json")
_REL_KEYS = ("relation", "predicate", "rel", "r", "property", "relationship", "type_of_relation")
_TAIL_KEYS = ("tail", "object", "value", "values", "t", "name", "target", "entity", "o")
_TYPE_KEYS = ("type", "tail_type", "object_type", "entity_type", "target_type", "label")
_MAX_DEPTH = 6
_MAX_CANDIDATES = 500  # a runaway generation cannot flood the graph
_MAX_NESTING = 32


@dataclass(frozen=True)
class Candidate:
    """One fact proposed by the model, before validation (relation not yet canonical)."""

    relation: str
    tail: str
    tail_type: str | None = None


@dataclass
class ParseResult:
    """Candidates found in one model output.

    ``ok`` is true when at least one JSON value was decoded (possibly after repair);
    ``repaired`` tells that truncated output was closed to salvage complete facts.
    """

    candidates: list[Candidate] = field(default_factory=list)
    ok: bool = False
    repaired: bool = False
    error: str | None = None


def _nesting(s: str) -> int:
    """Maximum bracket depth outside strings."""
    depth = peak = 0
    in_str = esc = False
    for ch in s:
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
            peak = max(peak, depth)
        elif ch in "}]":
            depth = max(0, depth - 1)
    return peak


def _scan_truncation(s: str) -> list[tuple[int, str]]:
    """Cut points (outside strings) with the closers that would balance the prefix."""
    cuts: list[tuple[int, str]] = []
    stack: list[str] = []
    in_str = esc = False
    for i, ch in enumerate(s):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
                # after a complete string value inside a list, the prefix is closable
                if stack and stack[-1] == "]":
                    cuts.append((i + 1, "".join(reversed(stack))))
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if stack:
                stack.pop()
            cuts.append((i + 1, "".join(reversed(stack))))
        elif ch == ",":
            cuts.append((i, "".join(reversed(stack))))
    return cuts


def _repair(s: str) -> Any | None:
    """Close a truncated JSON document at the last point where it is complete."""
    start = min((i for i in (s.find("{"), s.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    body = s[start:]
    for pos, closers in reversed(_scan_truncation(body)[-200:]):
        candidate = body[:pos].rstrip().rstrip(",") + closers
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
    return None


def _decode_all(s: str) -> list[Any]:
    """Every top-level JSON object/array embedded in ``s`` (prose around it is ignored)."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    i = 0
    while i < len(s):
        if s[i] in "{[":
            try:
                value, end = decoder.raw_decode(s, i)
            except (json.JSONDecodeError, RecursionError):
                i += 1
                continue
            values.append(value)
            i = end
        else:
            i += 1
    return values


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


def _interpret(value: Any, out: list[Candidate], relation: str | None = None, depth: int = 0) -> None:
    if depth > _MAX_DEPTH or len(out) >= _MAX_CANDIDATES:
        return
    if isinstance(value, dict):
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
            if k.casefold() in _WRAPPER_KEYS and isinstance(sub, (list, dict)):
                _interpret(sub, out, relation, depth + 1)
            else:  # relation -> value(s)
                _interpret_values(k, sub, out, depth + 1)
        return
    if isinstance(value, list):
        if relation is None and 2 <= len(value) <= 3 and all(_as_text(v) for v in value):
            # a bare pair/triple: [relation, tail] / [relation, tail, type] / [head, relation, tail]
            parts = [_as_text(v) for v in value]
            if len(parts) == 2:
                out.append(Candidate(parts[0], parts[1]))  # type: ignore[arg-type]
            else:
                out.append(Candidate(parts[0], parts[1], parts[2]))  # type: ignore[arg-type]
                out.append(Candidate(parts[1], parts[2]))  # type: ignore[arg-type]  # head-first reading
            return
        for element in value:
            _interpret(element, out, relation, depth + 1)
        return
    if relation is not None:
        text = _as_text(value)
        if text is not None:
            out.append(Candidate(relation, text))


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
            parts = [p.strip() for p in text.split(",")] if text.count(",") >= 1 and len(text) < 200 else [text]
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
    """Extract candidate facts from raw model output; never raises."""
    if raw is None or not str(raw).strip():
        return ParseResult(error="empty_output")
    s = str(raw).strip()
    fenced = _FENCE_RE.findall(s)
    if fenced:
        s = "\n".join(fenced)
    if _nesting(s) > _MAX_NESTING:
        # legitimate answers are 2-3 levels deep; this is junk and would exhaust recursion
        return ParseResult(error="too_deep")
    values: list[Any] = []
    repaired = False
    try:
        values = [json.loads(s)]
    except (json.JSONDecodeError, RecursionError):
        try:
            values = _decode_all(s)
        except RecursionError:
            values = []
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
