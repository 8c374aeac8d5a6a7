"""Known entities first: directors and cast named in the text, recognised by name.

The 135M model never fills ``directed_by`` or ``starring`` from an overview, and gives
the names it sees as characters or places instead ("Tom Hanks" as a character).  A
catalogue with curated credits knows who its directors and actors are: a full name
(two words or more) credited on *other* items is recognised where the text names it,
under the relation it is credited with most often there.  A name that other items'
texts mention without crediting it (a biopic's subject, a character sharing an actor's
name) is dropped when it is credited in fewer than ``min_ratio`` of those mentions.

Cross-fitted like :mod:`kg.lexicon`: an item's candidates come from the credits of the
other folds only, never its own.  The names are recognised before the model's open
relations, so a known person is not also kept as a character or a place.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kg.cues import cued_directors, director_cue
from kg.data import GoldFact, Item, read_gold
from kg.errors import ConfigError, DataFormatError
from kg.io import atomic_write_bytes, read_gzip_json_document
from kg.lexicon import item_fold, text_ngrams
from kg.text import match_key

FORMAT = "graphrec-kg-known/1"
PERSON_RELATIONS = ("directed_by", "starring")
#: version of the context rules of :mod:`kg.cues` (part of the fingerprint: a build resumed
#: with other rules would mix two kinds of records)
CUES_VERSION = "1"


@dataclass
class KnownEntities:
    """Per fold: name key -> [surface, relation] learned on the other folds.

    Attributes:
        relations: the credit relations recognised.
        folds: number of folds; ``entries[f]`` serves the items of fold ``f``.
        min_ratio: a name mentioned in other items' texts must be credited in at least this
            share of them.
        max_words: longest name recognised, in words.
        entries: per fold, name key -> [surface form, relation].
        source: what it was learned from.
        cues: ``directed_by`` only where a director cue in the text says so, plus names right
            after a strong cue that no item credits (:mod:`kg.cues`); False: every credited
            name found (the measured precision was 0.73: directors named in other roles).
    """

    relations: tuple[str, ...] = PERSON_RELATIONS
    folds: int = 2
    min_ratio: float = 0.3
    max_words: int = 3
    entries: list[dict[str, list[str]]] = field(default_factory=list)
    source: str = ""
    cues: bool = True

    def candidates(self, item_id: str, text: str) -> list[tuple[str, str]]:
        """(relation, surface) of the known names ``text`` holds, in a stable order."""
        table = self.entries[item_fold(item_id, self.folds)]
        found: dict[tuple[str, str], str] = {}
        for g in text_ngrams(text, self.max_words):
            if g not in table:
                continue
            surface, rel = table[g]
            if self.cues and rel == "directed_by" and not director_cue(text, g):
                continue  # named here as a subject, an influence, an actor...: see kg.cues
            found[(rel, g)] = surface
        if self.cues and "directed_by" in self.relations:
            for name in cued_directors(text, self.max_words):
                found.setdefault(("directed_by", match_key(name)), name)
        return sorted((rel, surface) for (rel, _), surface in found.items())

    def fingerprint(self) -> str:
        blob = json.dumps(
            [list(self.relations), self.folds, self.min_ratio, self.source]
            + [len(e) for e in self.entries]
            + ([CUES_VERSION] if self.cues else [])
        )
        return f"{zlib.crc32(blob.encode()):08x}"

    def save(self, path: str | Path) -> None:
        data = {
            "format": FORMAT,
            "relations": list(self.relations),
            "folds": self.folds,
            "min_ratio": self.min_ratio,
            "max_words": self.max_words,
            "entries": self.entries,
            "source": self.source,
            "cues": self.cues,
        }
        blob = json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")
        atomic_write_bytes(path, blob, gzipped=True)


def load_known_entities(path: str | Path) -> KnownEntities:
    path = Path(path)
    data = read_gzip_json_document(path, "known-entities file", FORMAT)
    entries = data.get("entries")
    if not isinstance(entries, list) or len(entries) != data.get("folds"):
        raise DataFormatError("entries must hold one table per fold", path=path, field="entries")
    return KnownEntities(
        tuple(data["relations"]),
        data["folds"],
        data["min_ratio"],
        data.get("max_words", 3),
        entries,
        data.get("source", ""),
        data.get("cues", True),  # files written before the cues: read with today's rules
    )


def learn_known_entities(
    items: Iterable[Item],
    gold: Iterable[GoldFact],
    relations: tuple[str, ...] = PERSON_RELATIONS,
    folds: int = 2,
    min_ratio: float = 0.3,
    max_words: int = 3,
    source: str = "",
) -> KnownEntities:
    """Learn the cross-fitted table of credited names (see the module doc)."""
    if folds < 2:
        raise ValueError(
            "folds must be >= 2 (an item's own credits must never produce its candidates)"
        )
    credits: list[dict[str, Counter]] = [defaultdict(Counter) for _ in range(folds)]
    surfaces: dict[str, Counter] = defaultdict(Counter)
    credited_items: dict[str, set[str]] = defaultdict(set)  # item -> credited name keys
    for g in gold:
        key = match_key(g.value)
        if g.relation in relations and len(key.split()) >= 2:
            credits[item_fold(g.item_id, folds)][key][g.relation] += 1
            surfaces[key][g.value.strip()] += 1
            credited_items[g.item_id].add(key)
    names = set().union(*(c.keys() for c in credits)) if credits else set()
    mentioned: list[Counter] = [Counter() for _ in range(folds)]  # key -> texts naming it
    credited: list[Counter] = [Counter() for _ in range(folds)]  # ... and crediting it
    for item in items:
        if not item.evidence:
            continue
        f = item_fold(item.item_id, folds)
        for name in text_ngrams(item.evidence, max_words) & names:
            mentioned[f][name] += 1
            credited[f][name] += name in credited_items.get(item.item_id, set())
    entries: list[dict[str, list[str]]] = []
    for f in range(folds):
        others = [o for o in range(folds) if o != f]
        roles: dict[str, Counter] = defaultdict(Counter)
        for o in others:
            for key, counts in credits[o].items():
                roles[key].update(counts)
        table: dict[str, list[str]] = {}
        for key, counts in sorted(roles.items()):
            seen = sum(mentioned[o][key] for o in others)
            if seen and sum(credited[o][key] for o in others) / seen < min_ratio:
                continue  # other texts name it without crediting it: a character or a subject
            table[key] = [surfaces[key].most_common(1)[0][0], counts.most_common(1)[0][0]]
        entries.append(table)
    return KnownEntities(tuple(relations), folds, min_ratio, max_words, entries, source)


def resolve_known_option(
    spec: str, items: list[Item], gold_path: str | Path, out: str | Path
) -> str:
    """``--known`` value -> file: ``auto`` learns it (cross-fitted) from ``gold_path``'s
    credits into ``OUT/known.json.gz`` once."""
    if spec != "auto":
        return spec
    if not gold_path:
        raise ConfigError("--known auto learns from a dataset's gold credits: give --dataset NAME")
    path = Path(out) / "known.json.gz"
    if not path.exists():
        learn_known_entities(items, read_gold(gold_path), source=str(gold_path)).save(path)
    return str(path)
