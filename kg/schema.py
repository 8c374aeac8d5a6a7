"""Per-domain ontologies: entity types, relations and allowed (source, relation, target) patterns.

A schema is a YAML file (see ``kg/schemas/films.yaml``).  The catalogue item is the
known subject of every extracted triple, so a schema's patterns whose source is the
item type are what the model may produce; the model names only relation and tail.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from kg.errors import DataFormatError, SchemaError
from kg.io import read_text_any

SCHEMA_DIR = Path(__file__).parent / "schemas"
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Relation:
    """One relation of the ontology."""

    name: str
    description: str
    synonyms: tuple[str, ...] = ()


@dataclass
class Schema:
    """A validated ontology.

    Attributes:
        name: schema name (``films``).
        version: schema version string; part of every cache key and provenance record.
        item_type: entity type of the catalogue items (the subject of extracted triples).
        entity_types: type name -> one-line definition.
        relations: relation name -> :class:`Relation`.
        patterns: allowed ``(source type, relation, target type)`` triples.
        vocabularies: closed types: type -> {canonical value -> accepted spellings}.
        example: one in-domain example ``{"text": str, "output": {relation: [values]}}``.
        knowledge: knowledge-mode settings ``{"relations": [...], "example": {...}}``.
        name_types: types whose values are proper names: they must start with a capital
            letter (after a leading "the"), which rejects "mysterious" as a Character.
        path: the file it was read from (for messages).
        default_off: relations kept only when asked for by name (``--relations``), with the
            measured reason: they do not reach the precision a user can trust (issue 19).
            Not part of the fingerprint: the prompt is unchanged, only what is kept.
    """

    name: str
    version: str
    item_type: str
    entity_types: dict[str, str]
    relations: dict[str, Relation]
    patterns: list[tuple[str, str, str]]
    vocabularies: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    example: dict[str, Any] = field(default_factory=dict)
    knowledge: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    path: str | None = None
    name_types: tuple[str, ...] = ()
    default_off: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._synonyms: dict[str, str] = {}
        for rel in self.relations.values():
            for key in (rel.name, *rel.synonyms):
                self._synonyms[_relation_key(key)] = rel.name
        self._vocab_index: dict[str, dict[str, str]] = {}
        for etype, values in self.vocabularies.items():
            index: dict[str, str] = {}
            for canonical, spellings in values.items():
                for spelling in (canonical, *spellings):
                    index[_vocab_key(spelling)] = canonical
            self._vocab_index[etype] = index

    # -- lookups ---------------------------------------------------------------------
    def canonical_relation(self, name: str) -> str | None:
        """Map a relation name or one of its synonyms (any case/spacing) to the schema name."""
        return self._synonyms.get(_relation_key(name))

    def target_types(self, relation: str, source_type: str | None = None) -> list[str]:
        """Target types allowed for ``relation`` from ``source_type`` (default: the item type)."""
        source = source_type or self.item_type
        return [t for s, r, t in self.patterns if s == source and r == relation]

    def item_relations(self) -> list[str]:
        """Relations whose source is the item type, in pattern order."""
        seen: list[str] = []
        for s, r, _ in self.patterns:
            if s == self.item_type and r not in seen:
                seen.append(r)
        return seen

    def canonical_value(self, entity_type: str, value: str) -> str | None:
        """For a closed type, the canonical vocabulary value (or ``None``); open types return ``value``."""
        index = self._vocab_index.get(entity_type)
        if index is None:
            return value
        return index.get(_vocab_key(value))

    def is_closed(self, entity_type: str) -> bool:
        return entity_type in self._vocab_index

    def vocabulary_spellings(self, entity_type: str, canonical: str) -> list[str]:
        return [canonical, *self.vocabularies.get(entity_type, {}).get(canonical, [])]

    def fingerprint(self) -> str:
        """Short hash of the schema content: changes whenever the file's meaning changes."""
        blob = json.dumps(
            {
                "name": self.name,
                "version": self.version,
                "types": self.entity_types,
                "relations": {
                    k: [v.description, list(v.synonyms)] for k, v in self.relations.items()
                },
                "patterns": self.patterns,
                "vocab": self.vocabularies,
                "example": self.example,
                "knowledge": self.knowledge,
                "name_types": list(self.name_types),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _relation_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).casefold())


def _vocab_key(value: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(value).casefold()).strip()


def available_schemas() -> list[str]:
    """Names of the schemas shipped with kg."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))


def load_schema(name_or_path: str | Path) -> Schema:
    """Load a shipped schema by name (``films``) or any schema YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix and "/" not in str(name_or_path) and os.sep not in str(name_or_path):
        candidate = SCHEMA_DIR / f"{name_or_path}.yaml"
        if not candidate.exists():
            raise SchemaError(
                f"unknown schema {str(name_or_path)!r}; shipped schemas: {', '.join(available_schemas())}"
            )
        path = candidate
    if not path.exists():
        raise SchemaError("schema file not found", path=path)
    try:
        text = read_text_any(path, "schema file")
    except DataFormatError as exc:
        raise SchemaError(str(exc)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise SchemaError(
            f"invalid YAML: {exc}", path=path, line=None if line is None else line + 1
        ) from None
    return schema_from_dict(data, path=str(path))


_KNOWN_FIELDS = frozenset(
    {
        "name",
        "version",
        "item_type",
        "description",
        "entity_types",
        "relations",
        "patterns",
        "vocabularies",
        "example",
        "knowledge",
        "name_types",
        "default_off",
    }
)
#: builds the error of a field: (message, field) -> SchemaError naming the file
_Fail = Callable[..., SchemaError]


def schema_from_dict(data: object, path: str | None = None) -> Schema:
    """Validate a parsed schema document; errors name the file and field.

    Checked in document order (fields, entity types, relations and their synonyms,
    patterns, vocabularies, then what refers back to them), so the first error named is
    the first a reader of the file meets.
    """

    def fail(msg: str, fld: str | None = None) -> SchemaError:
        return SchemaError(msg, path=path, field=fld)

    if not isinstance(data, dict):
        raise fail("a schema must be a YAML mapping")
    for key in ("name", "version", "item_type", "entity_types", "relations", "patterns"):
        if key not in data:
            raise fail("missing required field", key)
    for key in data:
        if key not in _KNOWN_FIELDS:
            raise fail(f"unknown field (allowed: {', '.join(sorted(_KNOWN_FIELDS))})", str(key))
    types = _entity_types(data["entity_types"], fail)
    item_type = str(data["item_type"])
    if item_type not in types:
        raise fail(f"{item_type!r} is not one of entity_types", "item_type")
    relations = _relations(data["relations"], fail)
    patterns = _patterns(data["patterns"], types, relations, fail)
    schema = Schema(
        name=str(data["name"]),
        version=str(data["version"]),
        item_type=item_type,
        entity_types={str(k): str(v) for k, v in types.items()},
        relations=relations,
        patterns=patterns,
        vocabularies=_vocabularies(data.get("vocabularies") or {}, types, fail),
        example=data.get("example") or {},
        knowledge=data.get("knowledge") or {},
        description=str(data.get("description", "")),
        path=path,
        name_types=tuple(str(t) for t in (data.get("name_types") or [])),
        default_off={str(k): str(v) for k, v in (data.get("default_off") or {}).items()},
    )
    for off in schema.default_off:  # issue 19: relations off unless asked for
        if off not in relations:
            raise fail(f"unknown relation {off!r}", "default_off")
    _check_references(schema, fail)
    return schema


def _entity_types(types: object, fail: _Fail) -> dict[str, str]:
    if not isinstance(types, dict) or not types:
        raise fail("must be a non-empty mapping type -> definition", "entity_types")
    for tname, definition in types.items():
        if not _NAME_RE.match(str(tname)) or not isinstance(definition, str):
            raise fail(
                f"bad entity type {tname!r} (name must be an identifier, definition a string)",
                "entity_types",
            )
    return types


def _relations(spec_map: object, fail: _Fail) -> dict[str, Relation]:
    """The relations, with their synonyms; a synonym may name one relation only."""
    relations: dict[str, Relation] = {}
    if not isinstance(spec_map, dict) or not spec_map:
        raise fail("must be a non-empty mapping", "relations")
    for rname, spec in spec_map.items():
        fld = f"relations.{rname}"
        if not _NAME_RE.match(str(rname)):
            raise fail("relation names must be identifiers", fld)
        spec = spec or {}
        if not isinstance(spec, dict):
            raise fail("must be a mapping with description/synonyms", fld)
        for key in spec:
            if key not in ("description", "synonyms"):
                # also catches unquoted commas in YAML flow mappings, which split a description
                raise fail(f"unknown key {key!r} (allowed: description, synonyms)", fld)
        synonyms = spec.get("synonyms", []) or []
        if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
            raise fail("synonyms must be a list of strings", fld + ".synonyms")
        relations[str(rname)] = Relation(
            str(rname), str(spec.get("description", "")), tuple(synonyms)
        )
    seen_syn: dict[str, str] = {}
    for rel in relations.values():
        for s in (rel.name, *rel.synonyms):
            k = _relation_key(s)
            if k in seen_syn and seen_syn[k] != rel.name:
                raise fail(
                    f"synonym {s!r} is used by both {seen_syn[k]} and {rel.name}",
                    f"relations.{rel.name}",
                )
            seen_syn[k] = rel.name
    return relations


def _patterns(
    raw: object, types: dict[str, str], relations: dict[str, Relation], fail: _Fail
) -> list[tuple[str, str, str]]:
    patterns: list[tuple[str, str, str]] = []
    if not isinstance(raw, list) or not raw:
        raise fail("must be a non-empty list of [source, relation, target]", "patterns")
    for i, pat in enumerate(raw):
        fld = f"patterns[{i}]"
        if not (isinstance(pat, list) and len(pat) == 3):
            raise fail("each pattern is [source type, relation, target type]", fld)
        s, r, t = (str(x) for x in pat)
        if s not in types or t not in types:
            raise fail(f"unknown entity type in {pat}", fld)
        if r not in relations:
            raise fail(f"unknown relation {r!r}", fld)
        patterns.append((s, r, t))
    return patterns


def _vocabularies(
    vocabularies: object, types: dict[str, str], fail: _Fail
) -> dict[str, dict[str, list[str]]]:
    if not isinstance(vocabularies, dict):
        raise fail("must be a mapping type -> {value: [spellings]}", "vocabularies")
    clean_vocab: dict[str, dict[str, list[str]]] = {}
    for tname, values in vocabularies.items():
        if tname not in types:
            raise fail(f"unknown entity type {tname!r}", "vocabularies")
        if not isinstance(values, dict):
            raise fail("must map canonical value -> list of spellings", f"vocabularies.{tname}")
        clean_vocab[tname] = {str(k): [str(s) for s in (v or [])] for k, v in values.items()}
    return clean_vocab


def _check_references(schema: Schema, fail: _Fail) -> None:
    """Name types, examples and knowledge relations must name declared types and relations,
    and some pattern must start at the item type."""
    for t in schema.name_types:
        if t not in schema.entity_types:
            raise fail(f"unknown entity type {t!r}", "name_types")
    for label, ex in (
        ("example", schema.example),
        ("knowledge.example", schema.knowledge.get("example")),
    ):
        if not ex:
            continue
        if (
            not isinstance(ex, dict)
            or not isinstance(ex.get("text"), str)
            or not isinstance(ex.get("output"), dict)
        ):
            raise fail("needs 'text' (string) and 'output' (mapping relation -> values)", label)
        for rel in ex["output"]:
            if rel not in schema.relations:
                raise fail(f"unknown relation {rel!r} in the example output", label)
    for rel in schema.knowledge.get("relations", []) or []:
        if rel not in schema.relations:
            raise fail(f"unknown relation {rel!r}", "knowledge.relations")
    if not schema.item_relations():
        raise fail(f"no pattern has the item type {schema.item_type!r} as source", "patterns")
