"""Validation of candidate facts against the schema and the source text.

Checks, in order (the first failing check is the rejection reason):
``empty_tail``, ``too_long``, ``unknown_relation``, ``relation_not_allowed`` (not
asked for in this mode), ``type_mismatch``, ``not_in_vocabulary``, ``not_a_name``
(a lowercase word as a Person/Character/Location...), ``ill_typed`` (a value of the
wrong kind for its type, see :mod:`kg.typed`; only with a ``typed`` validator), ``self_loop``,
``ambiguous_relation`` (same tail under relations of different types),
``other_subject`` (the reply states the fact about another item than the one asked about),
``unsupported_by_text`` (evidence check; skipped in knowledge mode) and
``duplicate``.  Every rejection is counted by reason.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from kg.parse import Candidate
from kg.schema import Schema
from kg.text import EvidenceIndex, normalize_name
from kg.typed import TypedValidator

REJECTION_REASONS = (
    "empty_tail",
    "too_long",
    "unknown_relation",
    "relation_not_allowed",
    "type_mismatch",
    "not_in_vocabulary",
    "not_a_name",
    "ill_typed",
    "self_loop",
    "other_subject",
    "ambiguous_relation",
    "unsupported_by_text",
    "duplicate",
)

SOURCE_TEXT = "text"
SOURCE_KNOWLEDGE = "llm_knowledge"


@dataclass(frozen=True)
class Triple:
    """A validated fact: the item (subject) --relation--> tail of ``tail_type``.

    ``source`` is ``"text"`` (grounded in the catalogue text) or ``"llm_knowledge"``
    (recalled by the model from the title; never evidence-checked).
    """

    item_id: str
    relation: str
    tail: str
    tail_type: str
    source: str = SOURCE_TEXT

    def to_json(self) -> list[str]:
        return [self.relation, self.tail, self.tail_type]


def title_variants(title: str) -> set[str]:
    """Normalised forms of an item title: as given, without a parenthesised alternative
    title, with a trailing ", The" moved to the front ("Bride of Frankenstein, The
    (Bride of Frankenstein)" -> "the bride of frankenstein", "bride of frankenstein")."""
    forms = {title}
    for part in re.split(r"\s*\(([^)]*)\)\s*", title):
        if part.strip():
            forms.add(part.strip())
    for form in list(forms):
        match = re.match(r"^(.*), (The|A|An|Les|La|Le|Il|Der|Die|Das|El)$", form)
        if match:
            forms.add(f"{match.group(2)} {match.group(1)}")
            forms.add(match.group(1))
    return {normalize_name(f) for f in forms if normalize_name(f)}


def _looks_like_name(tail: str) -> bool:
    words = tail.split()
    if words and words[0].casefold() in ("the", "a", "an") and len(words) > 1:
        words = words[1:]
    first = words[0] if words else ""
    return bool(first) and (first[0].isupper() or first[0].isdigit() or not first[0].isalpha())


@dataclass
class ValidationConfig:
    """Validation settings.

    Attributes:
        require_evidence: reject tails not supported by the source text (off in knowledge mode).
        max_tail_chars: longer tails are sentences, not entity names.
        max_tail_words: same, in words.
        reject_ambiguous: reject a tail the same answer gives under two relations with
            different open target types ("john" as character, place and company): the
            model does not know what it is.
    """

    require_evidence: bool = True
    reject_ambiguous: bool = True
    max_tail_chars: int = 80
    max_tail_words: int = 8


#: subjects that refer to the item asked about without naming it
_DEICTIC = {"it", "this", "item", "film", "movie", "product", "book", "title", "work"}


def _about_item(subject: str, item_id: str, title_keys: set[str]) -> bool:
    """Whether a stated subject is the item asked about: its title (any variant), its id,
    or a plain reference ("this film").  Unknown when the title is not known: kept."""
    if not title_keys:
        return True
    words = normalize_name(subject).split()
    if words and words[0] in ("the", "this", "a", "an", "that"):
        words = words[1:]
    if not words or " ".join(words) in _DEICTIC or subject.strip() == item_id:
        return True
    return bool(title_variants(subject) & title_keys)


def _ambiguous_tails(candidates: list[Candidate], schema: Schema) -> set[str]:
    """Normalised tails the reply gives under relations of different (open) target types."""
    types_of: dict[str, set[str]] = {}
    for cand in candidates:
        rel = schema.canonical_relation(cand.relation)
        for t in schema.target_types(rel) if rel else []:
            if not schema.is_closed(t):
                types_of.setdefault(normalize_name(str(cand.tail)), set()).add(t)
    return {k for k, v in types_of.items() if len(v) > 1}


def _tail_type(cand: Candidate, relation: str, schema: Schema) -> str | None:
    """The tail's entity type under ``relation`` (``None``: no pattern allows it).

    A type the reply states must be one of the relation's targets; an unknown type label
    with a single allowed target leaves the choice to the relation.
    """
    targets = schema.target_types(relation)
    if not targets:
        return None
    if cand.tail_type:
        given = [
            t for t in schema.entity_types if t.casefold() == cand.tail_type.strip().casefold()
        ]
        if given and given[0] in targets:
            return given[0]
        if given or len(targets) > 1:
            return None
    return targets[0]


def _checked_value(
    tail: str,
    tail_type: str,
    schema: Schema,
    item_id: str,
    item_title: str | None,
    evidence_text: str,
    cfg: ValidationConfig,
    typed: TypedValidator | None,
) -> tuple[str | None, str, list[str]]:
    """The value checks of one tail of ``tail_type``: closed vocabulary, proper name, typed value
    (issue 19).  Returns (rejection reason or None, the kept value, its spellings for the
    evidence check)."""
    if schema.is_closed(tail_type):
        canonical = schema.canonical_value(tail_type, tail)
        if canonical is None:
            return "not_in_vocabulary", tail, []
        # 1-2 letter spellings (ISO codes such as "it") are too ambiguous as evidence
        spellings = [
            x for x in schema.vocabulary_spellings(tail_type, canonical) if len(x) > 2
        ] or [canonical]
        tail = canonical
    else:
        spellings = [tail]
    if tail_type in schema.name_types and not _looks_like_name(tail):
        return "not_a_name", tail, spellings
    if typed is not None:
        text = evidence_text if cfg.require_evidence else ""  # knowledge mode: no text
        typed_tail = typed.check(tail_type, tail, item_id, item_title, text)
        if typed_tail is None:
            return "ill_typed", tail, spellings
        spellings = [typed_tail] if typed_tail != tail else spellings
        tail = typed_tail
    return None, tail, spellings


def validate(
    candidates: list[Candidate],
    schema: Schema,
    item_id: str,
    evidence_text: str,
    item_title: str | None = None,
    allowed_relations: set[str] | None = None,
    config: ValidationConfig | None = None,
    source: str = SOURCE_TEXT,
    seen: set[tuple[str, str]] | None = None,
    typed: TypedValidator | None = None,
) -> tuple[list[Triple], Counter]:
    """Keep the candidates that pass every check; count the others by reason.

    ``seen`` carries (relation, normalised tail) pairs across chunks and gleaning passes
    of one item so a fact is kept once.  ``typed`` adds the per-type value checks of
    :mod:`kg.typed` (reason ``ill_typed``; it may also cut a value to a shorter span).
    """
    cfg = config or ValidationConfig()
    rejected: Counter = Counter()
    kept: list[Triple] = []
    evidence = EvidenceIndex(evidence_text) if cfg.require_evidence else None
    title_keys = title_variants(item_title) if item_title else set()
    seen = set() if seen is None else seen
    ambiguous = _ambiguous_tails(candidates, schema) if cfg.reject_ambiguous else set()
    for cand in candidates:
        tail = " ".join(str(cand.tail).split()).strip(" .;:\"'")
        if not tail or not normalize_name(tail):
            rejected["empty_tail"] += 1
            continue
        if len(tail) > cfg.max_tail_chars or len(tail.split()) > cfg.max_tail_words:
            rejected["too_long"] += 1
            continue
        relation = schema.canonical_relation(cand.relation)
        if relation is None:
            rejected["unknown_relation"] += 1
            continue
        if allowed_relations is not None and relation not in allowed_relations:
            rejected["relation_not_allowed"] += 1
            continue
        tail_type = _tail_type(cand, relation, schema)
        if tail_type is None:
            rejected["type_mismatch"] += 1
            continue
        reason, tail, spellings = _checked_value(
            tail, tail_type, schema, str(item_id), item_title, evidence_text, cfg, typed
        )
        if reason is not None:
            rejected[reason] += 1
            continue
        if normalize_name(tail) in title_keys:
            rejected["self_loop"] += 1
            continue
        if cand.subject is not None and not _about_item(cand.subject, str(item_id), title_keys):
            rejected["other_subject"] += 1
            continue
        if not schema.is_closed(tail_type) and normalize_name(tail) in ambiguous:
            rejected["ambiguous_relation"] += 1
            continue
        if evidence is not None and not any(evidence.supports(s) for s in spellings):
            rejected["unsupported_by_text"] += 1
            continue
        key = (relation, normalize_name(tail))
        if key in seen:
            rejected["duplicate"] += 1
            continue
        seen.add(key)
        kept.append(Triple(str(item_id), relation, tail, tail_type, source))
    return kept, rejected
