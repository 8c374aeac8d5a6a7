"""The one hand-written JSON scanner: where the brackets, strings and commas of a reply are.

Model replies are scanned (not decoded) to bound their nesting before decoding
(:func:`nesting`), to stop free generation once a JSON object closes (:func:`close_point`),
to close a truncated reply at its last complete value (:func:`truncation_cuts`) and to read
the values of a list the model is still writing (:func:`list_values`).  All of them walk the
text through :func:`scan`, so the rules for strings and backslash escapes live in one place.
Each scan is linear: a regular expression skips every character that cannot change the
state, and the Python loop sees only quotes, backslashes and the asked structural
characters.  Decoding (bounded ``json``) is :mod:`kg.llm.safejson`'s.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator

_PATTERNS: dict[tuple[str, str], re.Pattern[str]] = {}
_STRING_VALUE_RE = re.compile(r'"((?:[^"\\\n]|\\.){1,120})"')


def _pattern(outside: str, inside: str) -> re.Pattern[str]:
    key = (outside, inside)
    found = _PATTERNS.get(key)
    if found is None:
        chars = "".join(sorted(set('\\"' + outside + inside)))
        found = _PATTERNS.setdefault(key, re.compile("[" + re.escape(chars) + "]"))
    return found


def scan(text: str, outside: str = "{}[]", inside: str = "") -> Iterator[tuple[int, str, bool]]:
    """``(position, character, in_string)`` for the characters of ``text`` that matter.

    Yields each character of ``outside`` found outside JSON strings (``in_string``
    false) and each character of ``inside`` found inside one (``in_string`` true).  A
    ``"`` in ``outside`` reports both ends of every string: the opening quote with
    ``in_string`` false, the closing one with ``in_string`` true.  Inside a string a
    backslash escapes the next character (``\\"`` does not end it, ``\\\\`` is one
    backslash); outside strings backslashes mean nothing.  Read from the start of
    ``text``: a text that begins inside a string is misread, as by any JSON reader.
    """
    report_quotes = '"' in outside
    in_str = False
    skip = -1  # position of a character escaped by a backslash
    for match in _pattern(outside, inside).finditer(text):
        pos = match.start()
        if pos == skip:
            continue
        ch = match.group()
        if in_str:
            if ch == "\\":
                skip = pos + 1
            elif ch == '"':
                in_str = False
                if report_quotes:
                    yield pos, ch, True
            elif ch in inside:
                yield pos, ch, True
        elif ch == '"':
            in_str = True
            if report_quotes:
                yield pos, ch, False
        elif ch in outside:
            yield pos, ch, False


def nesting(text: str) -> int:
    """Deepest ``{``/``[`` nesting outside JSON strings (a stray closer never goes below 0)."""
    depth = peak = 0
    for _, ch, _ in scan(text):
        if ch in "{[":
            depth += 1
            if depth > peak:
                peak = depth
        else:
            depth = depth - 1 if depth else 0
    return peak


def close_point(text: str) -> int | None:
    """Index just past the first complete top-level JSON object or array in ``text``, else ``None``.

    Brackets are counted, not matched (``{]`` closes); a closer before any opener
    takes the count below zero, so a reply that starts with a stray ``}`` never closes.
    """
    depth = 0
    for pos, ch, _ in scan(text):
        if ch in "{[":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos + 1
    return None


def truncation_cuts(text: str, keep: int, max_depth: int) -> list[tuple[int, str]]:
    """The last ``keep`` cut points of a truncated JSON text, each with the closers that balance it.

    A cut point is an index where the prefix before it ends on a complete value: just
    after a closing bracket, at a comma, or just after a complete string inside a
    list.  The closers (innermost first) are what makes that prefix a whole document.
    Empty when the text nests deeper than ``max_depth`` (junk; this also keeps every
    closer string short, so the scan stays linear).
    """
    cuts: deque[tuple[int, str]] = deque(maxlen=keep)
    closers = ""  # what balances the prefix, innermost first (at most max_depth characters)
    for pos, ch, in_string in scan(text, '{}[],"'):
        if ch == '"':
            # after a complete string value inside a list, the prefix is closable
            if in_string and closers[:1] == "]":
                cuts.append((pos + 1, closers))
        elif ch == "{" or ch == "[":
            closers = ("}" if ch == "{" else "]") + closers
            if len(closers) > max_depth:
                return []
        elif ch == "}" or ch == "]":
            closers = closers[1:]
            cuts.append((pos + 1, closers))
        else:  # ","
            cuts.append((pos, closers))
    return list(cuts)


def list_end(text: str) -> tuple[int, bool]:
    """Where a list body being written ends, and whether it was closed.

    ``text`` is what follows a list's ``[`` (``"a", "b"]...``).  The body ends at the
    first ``]`` or ``}`` outside strings (closed) or at a raw newline inside a string
    (a value the model broke off: not closed); else it runs to the end of ``text``.
    """
    for pos, _, in_string in scan(text, "]}", "\n"):
        return pos, not in_string
    return len(text), False


def list_values(text: str, max_values: int) -> tuple[list[str], bool]:
    """The complete quoted values at the start of a list body being written, and whether it closed.

    Values are JSON strings of 1-120 characters before :func:`list_end`, unescaped
    and stripped; empty ones and repeats are dropped, at most ``max_values`` kept.
    """
    end, closed = list_end(text)
    values: list[str] = []
    for match in _STRING_VALUE_RE.finditer(text[:end]):
        try:
            value = json.loads(f'"{match.group(1)}"').strip()
        except json.JSONDecodeError:
            continue
        if value and value not in values:
            values.append(value)
    return values[:max_values], closed
