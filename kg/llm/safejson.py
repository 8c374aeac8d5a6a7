"""Bounded JSON decoding of untrusted text (LLM replies).

A model reply is attacker-shaped data: it can be megabytes long, nest brackets
thousands deep (``json`` then raises ``RecursionError``) or hold a 5,000-digit
number (``int()`` then raises ``ValueError: Exceeds the limit (4300 digits)``).
Every parser of model output checks the reply with :func:`check` *before* any JSON
or regular-expression work and decodes only through :func:`loads` /
:func:`decode_at` / :func:`iter_values`, which never raise anything but
:class:`Rejected` (``loads``) or return ``None``.  All scans here are linear in the
length of the text.

The bracket scan (:func:`nesting`, re-exported here) is :mod:`kg.llm.jsonscan`'s, the
one JSON scanner.  ``kg`` does not import ``graphrec``; ``graphrec.augmentation.parse``
uses this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kg.llm.jsonscan import nesting

__all__ = [
    "DEFAULT_LIMITS",
    "REASONS",
    "Limits",
    "Rejected",
    "check",
    "decode",
    "decode_at",
    "decoder",
    "iter_values",
    "loads",
    "nesting",
]

#: reasons :func:`check` and :func:`loads` reject a text for
REASONS = ("too_long", "too_deep", "number_too_long", "not_json")


@dataclass(frozen=True)
class Limits:
    """Bounds on a text before it is decoded.

    Attributes:
        max_chars: longest text accepted.
        max_depth: deepest bracket nesting (``{`` / ``[`` outside strings).
        max_digits: longest run of ASCII digits anywhere in the text (a JSON number,
            or digits a decoder starting mid-text could read as one).
        max_attempts: most failed decode attempts when values are searched for in
            prose (:func:`iter_values`); each attempt is linear, so the search is too.
        max_values: most values :func:`iter_values` yields (``[][][]...`` is thousands).
    """

    max_chars: int = 50_000
    max_depth: int = 32
    max_digits: int = 100
    max_attempts: int = 64
    max_values: int = 256


DEFAULT_LIMITS = Limits()


class Rejected(ValueError):
    """A text the bounded decoder refused; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "", position: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        #: where decoding failed (``not_json`` syntax errors), else ``None``
        self.position = position


def _digit_run_re(limit: int) -> re.Pattern[str]:
    # anchored at the start of a run (look-behind), so each run is examined once: linear
    return re.compile(rf"(?<![0-9])[0-9]{{{limit + 1}}}")


_DIGIT_RES: dict[int, re.Pattern[str]] = {}


def check(text: str, limits: Limits = DEFAULT_LIMITS) -> Rejected | None:
    """The first bound ``text`` breaks (as a :class:`Rejected`, not raised), else ``None``.

    Size first (so the other scans run on bounded input), then number length, then
    nesting depth.  Linear time.
    """
    if len(text) > limits.max_chars:
        return Rejected("too_long", f"{len(text)} characters (limit {limits.max_chars})")
    pattern = _DIGIT_RES.get(limits.max_digits)
    if pattern is None:
        pattern = _DIGIT_RES.setdefault(limits.max_digits, _digit_run_re(limits.max_digits))
    long_number = pattern.search(text)
    if long_number is not None:
        run = len(text) - len(text[long_number.start() :].lstrip("0123456789"))
        return Rejected("number_too_long", f"a {run}-digit number (limit {limits.max_digits})")
    depth = nesting(text)
    if depth > limits.max_depth:
        return Rejected("too_deep", f"nesting depth {depth} (limit {limits.max_depth})")
    return None


class _NumberTooLong(ValueError):
    pass


def _decoder(limits: Limits) -> json.JSONDecoder:
    def parse_int(digits: str) -> int:
        # second line of defence after check(): never hand int() a huge string
        if len(digits.lstrip("-")) > limits.max_digits:
            raise _NumberTooLong(f"a {len(digits)}-digit number")
        return int(digits)

    return json.JSONDecoder(parse_int=parse_int)


_DECODERS: dict[Limits, json.JSONDecoder] = {}


def decoder(limits: Limits = DEFAULT_LIMITS) -> json.JSONDecoder:
    """A ``json`` decoder whose integers are length-checked (cached per limits)."""
    found = _DECODERS.get(limits)
    if found is None:
        found = _DECODERS.setdefault(limits, _decoder(limits))
    return found


def loads(text: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """``json.loads`` of a checked text; raises only :class:`Rejected`."""
    problem = check(text, limits)
    if problem is not None:
        raise problem
    return decode(text, limits)


def decode(text: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """:func:`loads` without the :func:`check`, for a text already checked (or built
    from a checked text with the bounds kept); raises only :class:`Rejected`."""
    try:
        return decoder(limits).decode(text)
    except json.JSONDecodeError as exc:
        raise Rejected("not_json", exc.msg[:200], exc.pos) from None
    except (
        ValueError,
        RecursionError,
    ) as exc:  # an over-long integer; nesting past the recursion limit
        raise Rejected("not_json", f"{type(exc).__name__}: {str(exc)[:200]}") from None


def decode_at(text: str, pos: int, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, int] | None:
    """The JSON value starting exactly at ``pos`` and where it ends, or ``None``.

    ``text`` must already have passed :func:`check`; a decode that fails (syntax,
    recursion, an over-long integer) returns ``None``.
    """
    try:
        return _attempt(text, pos, limits)[0]
    except Rejected:
        return None


def _attempt(text: str, pos: int, limits: Limits) -> tuple[tuple[Any, int] | None, int]:
    """``((value, end) or None, characters read)``; raises :class:`Rejected` past the recursion limit."""
    try:
        value, end = decoder(limits).raw_decode(text, pos)
        return (value, end), end - pos
    except json.JSONDecodeError as exc:
        return None, max(1, exc.pos - pos)
    except RecursionError:
        raise Rejected("too_deep", "nesting past the recursion limit") from None
    except ValueError:  # an over-long integer (parse_int)
        return None, 1


def iter_values(
    text: str | Sequence[str], openers: str = "{[", limits: Limits = DEFAULT_LIMITS
) -> Iterator[tuple[Any, int, int]]:
    """Every JSON value embedded in prose: ``(value, start, end)`` in order.

    A decode is tried at each ``openers`` character not inside a value already found.
    ``text`` may be several variants of one text of equal length (e.g. with single
    quotes made double): at each position they are tried in turn, the first that
    decodes wins.  The search is bounded: it stops after ``limits.max_attempts``
    failed tries, ``limits.max_values`` values, once failed tries have read about twice
    the text, or at the first decode that hits the recursion limit (junk nested
    behind a stray quote, which the nesting check cannot see).  Each try is linear,
    so a run of ``{`` cannot make it quadratic, and the objects decoding allocates
    stay proportional to the text.  The text must have passed :func:`check`.
    """
    variants = [text] if isinstance(text, str) else list(text)
    if not variants:
        return
    first = variants[0]
    pattern = re.compile("[" + re.escape(openers) + "]")
    failures = found_values = 0
    budget = 2 * len(first) + 1024  # characters failed tries may read
    pos = 0
    while failures < limits.max_attempts and found_values < limits.max_values and budget > 0:
        match = pattern.search(first, pos)
        if match is None:
            return
        start = match.start()
        found = None
        for variant in variants:
            try:
                found, read = _attempt(variant, start, limits)
            except Rejected:
                return
            if found is not None:
                break
            failures += 1
            budget -= read
        if found is None:
            pos = start + 1
            continue
        value, end = found
        found_values += 1
        yield value, start, end
        pos = max(end, start + 1)
