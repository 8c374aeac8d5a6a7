"""Typed validation of values: a grounded span is not yet a value of the right kind.

The embedded 135M model copies spans of the text, so its facts are grounded, but a
span can be the wrong kind of thing: ``set_in_period = "Dave Kovic"``, ``set_in =
"Molly and"``, ``brand = "Scotch Magic Office Tape"``, ``category = "High"``.  The
checks here run after the schema checks of :func:`kg.validate.validate` and reject
such values (reason ``ill_typed``), or choose the right boundary inside them (the
shortest well-formed span: "Scotch Magic Office Tape" -> "Scotch" when the catalogue
knows "Scotch" as a brand).

Rules by target entity type (the type names of the shipped schemas):

* ``TimePeriod``: a time expression: a year, decade, century, or a named era.
* proper-name types (the schema's ``name_types``, e.g. Person, Character, Location,
  Company): a proper-noun phrase, not a clause fragment: every word capitalised but
  for name particles ("of", "de", "van"), no verbs or conjunctions ("Molly and",
  "Michael is a 12-year-old").
* ``Brand``: with a learned :class:`~kg.brands.CatalogueLexicon`, the item's brand
  span; a longer value that starts with it is cut to it; anything else is ill-typed.
  Without a lexicon: a proper-noun phrase.
* ``Category``: with a lexicon, a phrase of the learned category vocabulary.
* any type given a *closed* lexicon (``kg build --lexicon FILE --lexicon-closed``, learned
  from other items' curated values, e.g. a shop's category tree): a phrase of that lexicon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kg.brands import CatalogueLexicon
from kg.lexicon import Lexicon
from kg.text import match_key, normalize_name

ILL_TYPED = "ill_typed"

_ERA_WORDS = {
    "age",
    "ages",
    "era",
    "eras",
    "century",
    "centuries",
    "millennium",
    "decade",
    "war",
    "dynasty",
    "reign",
    "period",
    "revolution",
    "depression",
    "prohibition",
    "renaissance",
    "medieval",
    "victorian",
    "edwardian",
    "elizabethan",
    "georgian",
    "regency",
    "prehistoric",
    "prehistory",
    "antiquity",
    "ancient",
    "jurassic",
    "cretaceous",
    "future",
    "past",
    "present",
    "modern",
    "contemporary",
    "postwar",
    "wartime",
    "interwar",
    "colonial",
    "reconstruction",
    "enlightenment",
    "holocaust",
    "sixties",
    "seventies",
    "eighties",
    "nineties",
    "twenties",
    "thirties",
    "forties",
    "fifties",
    "christmas",
    "summer",
    "winter",
    "spring",
    "autumn",
    "fall",
}
#: a year or decade word; an ordinal alone ("18th" birthday) is not a time, "18th century" is
_YEAR = re.compile(r"^(?:1[0-9]{3}|20[0-9]{2})s?$|^'?[0-9]0s$")
_AGE = re.compile(r"\d+[- ](?:year|month|week|day)s?[- ]old", re.IGNORECASE)
_NUMBER_ERA = re.compile(r"^\d+(?:st|nd|rd|th)?$|^(?:bc|bce|ad|ce)$")
#: words a proper-noun phrase may hold in lower case
_PARTICLES = {
    "of",
    "the",
    "de",
    "del",
    "della",
    "da",
    "di",
    "du",
    "des",
    "la",
    "le",
    "les",
    "van",
    "von",
    "der",
    "den",
    "y",
    "al",
    "el",
    "bin",
    "ibn",
    "on",
    "upon",
    "st",
}
#: words that make a span a clause, not a name, whatever their case
_CLAUSE_WORDS = {
    "and",
    "or",
    "but",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "has",
    "have",
    "had",
    "who",
    "whom",
    "which",
    "that",
    "when",
    "where",
    "while",
    "his",
    "her",
    "their",
    "its",
    "he",
    "she",
    "they",
    "we",
    "i",
    "you",
    "a",
    "an",
    "to",
    "with",
    "from",
    "as",
    "at",
    "by",
    "for",
    "not",
}


def is_time_expression(value: str) -> bool:
    """Years ("1969", "1920s", "'60s"), centuries ("19th century"), named eras
    ("the Middle Ages", "World War II", "the Great Depression", "Victorian era")."""
    if _AGE.search(value):  # "12-year-old" is an age
        return False
    words = normalize_name(value.replace("-", " ")).split()
    if not words or words[-1] in _CLAUSE_WORDS or words[-1] in _PARTICLES - {"bc", "ad"}:
        return False  # a clause fragment: "Christmas Day on a"
    for word in words:
        if _YEAR.match(word) or word in _ERA_WORDS:
            return True
    # "300 BC", "AD 79": a bare number ("12", "$10 million") is not a time
    return (
        all(_NUMBER_ERA.match(w) for w in words)
        and any(w[0].isdigit() for w in words)
        and any(w in ("bc", "bce", "ad", "ce") for w in words)
    )


def is_proper_noun_phrase(value: str) -> bool:
    """Every word capitalised (or a digit, or a name particle after the first word), no
    clause words: "Molly and", "Michael is a 12-year-old" are fragments, not names."""
    words = value.split()
    if not words:
        return False
    if words[0].casefold() == "the" and len(words) > 1:
        words = words[1:]
    for i, word in enumerate(words):
        bare = word.strip(".,;:'\"()!?")
        if not bare:
            return False
        low = bare.casefold()
        if low in _CLAUSE_WORDS:
            return False
        if bare[0].isupper() or bare[0].isdigit() or not bare[0].isalpha():
            continue
        if i > 0 and low in _PARTICLES:
            continue
        return False
    return words[-1].casefold().strip(".,") not in _PARTICLES


_SENTENCE_END = re.compile(r"[.!?:;\"“”()]\s*$")


def _capitalised(token: str) -> bool:
    return bool(token) and token[0].isupper()


def is_name_fragment(value: str, text: str) -> bool:
    """Whether every occurrence of ``value`` in ``text`` sits inside a longer capitalised
    run ("Hundred" of "Hundred Acre Wood", "Mickle" of "director Jim Mickle", "Matter" of
    "No Matter What"): a piece of a longer name, not the name.  A capitalised word before
    it counts only when it does not start a sentence ("Young Shakespeare is ..." keeps
    "Shakespeare").  A value not found verbatim is not judged (False)."""
    found = False
    for m in re.finditer(r"(?<![\w'’-])" + re.escape(value) + r"(?![\w'’-])", text):
        found = True
        after = re.match(r"[ \t]+(\S+)", text[m.end() :])
        before = re.search(r"(\S+)[ \t]+$", text[: m.start()])
        nxt = _capitalised(after.group(1)) if after else False
        prev = False
        if before and _capitalised(before.group(1)):
            head = text[: before.start(1)]
            prev = bool(head.strip()) and not _SENTENCE_END.search(head)
        if not (nxt or prev):
            return False
    return found


@dataclass
class TypedValidator:
    """Per-type value checks for one build.

    Attributes:
        name_types: entity types whose values are proper names (the schema's ``name_types``).
        catalogue: learned brand lexicon and category vocabulary (products), or None.
        time_types: entity types whose values are time expressions.
        closed: entity type -> a lexicon (:mod:`kg.lexicon`, learned from other items'
            curated values) whose phrases are that type's closed vocabulary: a value
            outside it is ill-typed, one inside takes the lexicon's spelling.
    """

    name_types: tuple[str, ...] = ()
    catalogue: CatalogueLexicon | None = None
    time_types: tuple[str, ...] = ("TimePeriod",)
    closed: dict[str, Lexicon] = field(default_factory=dict)

    def check(
        self, tail_type: str, tail: str, item_id: str, title: str | None, text: str = ""
    ) -> str | None:
        """The value to keep (``tail`` or a shorter, well-formed span of it), or None: ill-typed.
        ``text`` (the item's evidence) lets a name be told from a piece of a longer name."""
        if tail_type in self.time_types:
            return tail if is_time_expression(tail) else None
        if tail_type in self.closed:
            return self.closed[tail_type].in_vocabulary(item_id, tail)
        if tail_type == "Brand":
            return self._brand(tail, item_id, title)
        if tail_type == "Category" and self.catalogue is not None:
            return self.catalogue.in_vocabulary(item_id, tail)
        if tail_type in self.name_types:
            if not is_proper_noun_phrase(tail) or (text and is_name_fragment(tail, text)):
                return None
            if is_time_expression(tail) and any(
                _YEAR.match(w) for w in normalize_name(tail).split()
            ):
                return None  # "1920s" is a time, not a place or a person
        return tail

    def _brand(self, tail: str, item_id: str, title: str | None) -> str | None:
        if self.catalogue is None or not title:
            return tail if is_proper_noun_phrase(tail) else None
        expected = self.catalogue.brand_span(item_id, title)
        if expected is None:
            return None
        key, want = match_key(tail), match_key(expected)
        if key == want or key.startswith(want + " "):
            return expected  # the shortest well-formed span the value starts with
        return None
