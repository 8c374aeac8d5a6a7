"""A keyword lexicon learned from *other* items' gold facts: a deterministic candidate step.

A 135M model misses most keywords a text supports.  Catalogues with curated
keywords (TMDB) tell which phrases are used as keywords and how often a phrase that
appears in an overview is also one of that film's keywords ("keyphraseness", as in
Wikipedia link mining).  This module learns that from gold facts and proposes, for a
new text, the lexicon phrases that occur in it with keyphraseness above a threshold.

No item's own gold ever produces its candidates: items are split into ``folds`` by a
stable hash of their id, and an item's candidates come from the lexicon learned on the
*other* folds only (cross-fitting).  Candidates are word sequences of the text itself
(evidence-checked like every triple) and are recorded apart from the LLM's output
(journal field ``lexicon``), so a build reports what the LLM and what the lexicon
contributed.  Use it only where the curated keywords are not themselves the
evaluation target of a downstream experiment.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kg.data import GoldFact, Item
from kg.errors import DataFormatError
from kg.io import atomic_write_bytes, read_gzip_json_document
from kg.text import match_key, match_tokens

FORMAT = "graphrec-kg-lexicon/1"


def item_fold(item_id: str, folds: int) -> int:
    """Stable fold of an item (crc32 of its id): same on every machine and run."""
    return zlib.crc32(str(item_id).encode("utf-8")) % folds


def text_ngrams(text: str, max_words: int = 4) -> set[str]:
    """All 1..max_words token sequences of ``text`` in match-key form."""
    toks = match_tokens(text or "")
    grams = set()
    for i in range(len(toks)):
        for n in range(1, max_words + 1):
            if i + n <= len(toks):
                grams.add(" ".join(toks[i : i + n]))
    return grams


@dataclass
class Lexicon:
    """Per fold: phrase key -> (surface form, keyphraseness, gold hits) learned without that fold.

    Attributes:
        relation: the relation the phrases are values of (``keyword``).
        folds: number of folds; ``entries[f]`` is used for items of fold ``f``.
        min_hits: a phrase needs this many (other-fold) items where it is both in the text
            and gold.
        min_ratio: keyphraseness threshold: P(phrase is gold | phrase in the text).
        entries: per fold, key -> [surface, ratio, hits].
        source: description of the data it was learned from.
    """

    relation: str = "keyword"
    folds: int = 2
    min_hits: int = 2
    min_ratio: float = 0.1
    max_words: int = 4
    entries: list[dict[str, list]] = field(default_factory=list)
    source: str = ""

    def candidates(self, item_id: str, text: str) -> list[tuple[str, float]]:
        """(surface, keyphraseness) of lexicon phrases in ``text``, best first; a phrase
        contained in a longer candidate is kept too (gold lists both, e.g. "war", "civil war")."""
        table = self.entries[item_fold(item_id, self.folds)]
        found = [
            (table[g][0], float(table[g][1]))
            for g in text_ngrams(text, self.max_words)
            if g in table
        ]
        return sorted(found, key=lambda x: (-x[1], x[0]))

    def in_vocabulary(self, item_id: str, value: str) -> str | None:
        """The lexicon's surface form of ``value`` in the table serving ``item_id`` (learned on
        the other folds), or None: used as a closed vocabulary of the relation."""
        entry = self.entries[item_fold(item_id, self.folds)].get(match_key(value))
        return entry[0] if entry else None

    def fingerprint(self) -> str:
        blob = json.dumps(
            [
                self.relation,
                self.folds,
                self.min_hits,
                self.min_ratio,
                self.source,
                sum(len(e) for e in self.entries),
            ]
        )
        return f"{zlib.crc32(blob.encode()):08x}"

    def save(self, path: str | Path) -> None:
        data = {
            "format": FORMAT,
            "relation": self.relation,
            "folds": self.folds,
            "min_hits": self.min_hits,
            "min_ratio": self.min_ratio,
            "max_words": self.max_words,
            "source": self.source,
            "entries": self.entries,
        }
        atomic_write_bytes(path, json.dumps(data, ensure_ascii=False).encode("utf-8"), gzipped=True)


def load_lexicon(path: str | Path) -> Lexicon:
    path = Path(path)
    data = read_gzip_json_document(path, "lexicon file", FORMAT)
    entries = data.get("entries")
    if not isinstance(entries, list) or len(entries) != data.get("folds"):
        raise DataFormatError("entries must hold one table per fold", path=path, field="entries")
    return Lexicon(
        relation=data["relation"],
        folds=data["folds"],
        min_hits=data["min_hits"],
        min_ratio=data["min_ratio"],
        max_words=data.get("max_words", 4),
        entries=entries,
        source=data.get("source", ""),
    )


def build_lexicon(
    items: Iterable[Item],
    gold: Iterable[GoldFact],
    relation: str = "keyword",
    folds: int = 2,
    min_hits: int = 2,
    min_ratio: float = 0.1,
    max_words: int = 4,
    source: str = "",
) -> Lexicon:
    """Learn the cross-fitted lexicon (see module doc) from items with text and gold facts."""
    if folds < 2:
        raise ValueError(
            "folds must be >= 2 (an item's own gold must never produce its candidates)"
        )
    gold_by_item: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for g in gold:
        if g.relation == relation and g.value:
            key = " ".join(match_tokens(g.value))
            if key:
                gold_by_item[g.item_id][key][g.value.strip()] += 1
    seen: list[Counter[str]] = [Counter() for _ in range(folds)]  # per fold: phrase in text
    hits: list[Counter[str]] = [Counter() for _ in range(folds)]  # per fold: in text and gold
    surfaces: dict[str, Counter[str]] = defaultdict(Counter)
    for item in items:
        if not item.evidence:
            continue
        f = item_fold(item.item_id, folds)
        grams = text_ngrams(item.evidence, max_words)
        seen[f].update(grams)
        for key, spellings in gold_by_item.get(item.item_id, {}).items():
            if key in grams:
                hits[f][key] += 1
                surfaces[key].update(spellings)
    entries: list[dict[str, list]] = []
    for f in range(folds):
        other_hits = sum((hits[o] for o in range(folds) if o != f), Counter())
        other_seen = sum((seen[o] for o in range(folds) if o != f), Counter())
        table = {}
        for key, n in other_hits.items():
            ratio = n / other_seen[key] if other_seen[key] else 0.0
            if n >= min_hits and ratio >= min_ratio:
                table[key] = [surfaces[key].most_common(1)[0][0], round(ratio, 4), n]
        entries.append(table)
    return Lexicon(relation, folds, min_hits, min_ratio, max_words, entries, source)
