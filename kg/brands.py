"""A brand lexicon and a category vocabulary learned from the catalogue text itself.

Product titles follow a shape: ``<Brand> <model> <product type>, <details>``.  A 135M
model does not find the boundaries of that shape ("Scotch Magic Office Tape" as a
brand, "High" as a category), so the values are taken from what the *catalogue*
says, learned without any label:

* **brands**: a leading title span is a brand when it recurs as the start of other
  titles and rarely occurs anywhere else in their text (``lead / anywhere`` high:
  "Scotch" starts many titles and is rarely said elsewhere; "Clear" or "Stainless
  Steel" start titles but are said everywhere).  The *shortest* such span is the
  brand ("Paper" alone is common words, "Paper Mate" is the brand), extended by a word
  while the catalogue's titles that start with it mostly go on with that word (at least
  ``continue_share`` of them: "Gardner" -> "Gardner Bender", but "Scotch" stays "Scotch"
  beside "Scotch Magic", "Scotch Foil", ...).  A title whose
  leading name has never been seen elsewhere falls back to its leading capitalised
  words up to the first descriptive word (one said in later title positions of other
  items) or model number, at most ``max_shape_words`` words (1: the second word of a
  never-seen name was more often a product word, "Sparco Sealing", "iXCC Basic", than a
  name's, "Paper Mate"); ``fallback=False`` abstains there instead (higher precision, far
  lower recall: see the figures in kg/README.md).  A span the title goes on with a
  company word is the company's name ("Titan" -> "Titan Tools", "LDR" -> "LDR Industries",
  "Lord" -> "Lord & Hodge").
* **categories**: the trailing phrase of a title's first segment (before a comma,
  "with", "for" ...) is the product type; a phrase that is such a head in several
  other titles and a head in a good share of the titles holding it forms the
  vocabulary ("Duct Tape", "Wood Screws"); unit words ("Pack", "oz": mostly after a
  number) are not categories.

Everything is learned from ``Item.title`` and ``Item.evidence`` (the text columns),
never from gold facts nor from brand/category columns.  Like :mod:`kg.lexicon`, the
learning is cross-fitted: an item's values come from the tables learned on the other
folds only, so an item's own title never makes its brand "recur".
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg.data import Item
from kg.errors import DataFormatError
from kg.io import atomic_write_bytes, read_gzip_json_document
from kg.lexicon import item_fold, text_ngrams
from kg.text import match_key

FORMAT = "graphrec-kg-catalogue/1"

#: where a title's leading name ends at the latest (a part of the title after these is details)
_LEAD_SEP = re.compile(r"[,;:()\[\]|/]|\s-\s")
#: title segment boundaries: the product type is the tail of the first segment
_SEGMENT_SEP = re.compile(
    r"\s*(?:[,;:()\[\]|]|\s-\s|\bwith\b|\bfor\b|\band\b|\bby\b|\bin\b|\bto\b|\bof\b|&)\s*",
    re.IGNORECASE,
)
#: a leading quantity or size ("10pcs", "4-1/2", "25-Pack", "316"): not a brand
_QUANTITY = re.compile(
    r"\d[\d\-/.,x]*(pcs?|pack|pk|mm|cm|in|ft|oz|lbs?|g|kg|ml|l|v|w|mil|gauge|awg|ct|count)?",
    re.IGNORECASE,
)
_HAS_DIGIT = re.compile(r"\d")
#: words that end a company's name ("Titan Tools", "Spears Manufacturing"); plural "Tools",
#: "Products" only: a singular one is the product ("WD-40 Multi-Use Product", "W1 Tool")
_COMPANY_WORDS = {
    "company",
    "co",
    "inc",
    "corp",
    "corporation",
    "industries",
    "products",
    "tools",
    "manufacturing",
    "mfg",
    "ltd",
    "llc",
    "labs",
    "laboratories",
    "group",
    "international",
    "instruments",
    "systems",
    "supply",
    "technologies",
}


def _lead_words(title: str, limit: int = 5) -> list[str]:
    """The first words of a title, before the first separator, without a leading "The"."""
    words = _LEAD_SEP.split(title, maxsplit=1)[0].split()[:limit]
    if words and words[0].casefold() == "the":
        words = words[1:]
    return words


def _name_word(word: str, position: int) -> bool:
    """A word that can be part of a brand: capitalised or digit-led ("3M"), or camel case
    ("eSUN", "uxcell" is lost); no digits after the first word (model numbers)."""
    if not word or (position > 0 and _HAS_DIGIT.search(word)):
        return False
    if word[0].isupper() or word[0].isdigit():
        return True
    return position == 0 and word[0].isalpha() and any(c.isupper() for c in word[1:])


def _name_run(title: str, limit: int = 4) -> list[str]:
    run: list[str] = []
    for i, word in enumerate(_lead_words(title)[:limit]):
        if not _name_word(word, i):
            break
        run.append(word)
    return run


def _company_name(span: str, title: str, max_more: int = 3) -> str:
    """``span`` grown to the company name the title's first words spell with it: up to
    ``max_more`` capitalised words (or "& Word") ending in a company word; else ``span``."""
    words = _LEAD_SEP.split(title, maxsplit=1)[0].split()
    n = len(span.split())
    if [match_key(w) for w in words[:n]] != [match_key(w) for w in span.split()]:
        return span
    best = n
    for k in range(n, min(len(words), n + max_more)):
        word = words[k]
        if _HAS_DIGIT.search(word) or not (word[0].isupper() or word == "&"):
            break
        if word.rstrip(".").casefold() in _COMPANY_WORDS or words[k - 1] == "&":
            best = k + 1
    return " ".join(words[:best]).rstrip(".") if best > n else span


def _head_phrases(title: str, max_words: int = 3) -> list[str]:
    """Trailing 1..max_words-word phrases (match keys) of the title's first segment."""
    segments = [s for s in _SEGMENT_SEP.split(title) if s and s.strip()]
    if not segments:
        return []
    toks = segments[0].split()
    out: list[str] = []
    for n in range(1, max_words + 1):
        if n > len(toks):
            break
        phrase = toks[-n:]
        if any(_HAS_DIGIT.search(t) for t in phrase):
            break
        key = match_key(" ".join(phrase))
        if key:
            out.append(key)
    return out


@dataclass
class _FoldCounts:
    lead: Counter = field(default_factory=Counter)  # leading span key -> titles it starts
    anywhere: Counter = field(default_factory=Counter)  # n-gram key -> items whose text has it
    late: Counter = field(default_factory=Counter)  # word key -> titles with it at position >= 2
    head: Counter = field(default_factory=Counter)  # phrase key -> titles it is the head of
    title_df: Counter = field(default_factory=Counter)  # phrase key -> titles holding it
    after_number: Counter = field(default_factory=Counter)  # word key -> times after a number
    seen: Counter = field(default_factory=Counter)  # word key -> times at position >= 1
    surface: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, item: Item) -> None:
        title = item.title or ""
        words = _lead_words(title)
        self.lead.update({match_key(" ".join(words[:n])) for n in range(1, min(len(words), 4) + 1)})
        self.anywhere.update(text_ngrams(item.evidence or title, 4))
        toks = title.split()
        self.late.update({match_key(w) for w in toks[2:]} - {""})
        for i in range(1, len(toks)):
            key = match_key(toks[i])
            if key:
                self.seen[key] += 1
                self.after_number[key] += bool(_HAS_DIGIT.search(toks[i - 1]))
        self.title_df.update(text_ngrams(title, 3))
        segments = [s for s in _SEGMENT_SEP.split(title) if s and s.strip()]
        first = segments[0].split() if segments else []
        for n in range(1, 4):
            if n <= len(first) and not any(_HAS_DIGIT.search(t) for t in first[-n:]):
                key = match_key(" ".join(first[-n:]))
                if key:
                    self.head[key] += 1
                    self.surface[key][" ".join(first[-n:])] += 1


@dataclass
class CatalogueLexicon:
    """Per fold, tables learned on the *other* folds (see the module doc).

    Attributes:
        folds: number of folds; ``brands[f]`` etc. serve the items of fold ``f``.
        min_lead: a brand span starts at least this many other titles.
        min_lead_ratio: and at least this share of the other items whose text holds it.
        descriptive_min: a word at title position >= 2 in this many other titles is
            descriptive (a product word, not part of a name).
        max_shape_words: most words of a fallback (never-seen) brand.
        min_head: a category phrase heads at least this many other titles.
        min_head_ratio: and heads at least this share of the titles holding it.
        brands: per fold, brand span keys.
        descriptive: per fold, descriptive word keys.
        categories: per fold, category key -> most frequent surface form.
        units: per fold, unit word keys (mostly after a number: "pack", "oz").
        source: what it was learned from.
        continue_share: a brand span is extended by the next word when at least this share
            of the other titles it starts go on with that word (chosen on fold 0 of
            amazon18-scientific among 0.5-0.9, checked on fold 1: brand precision .60 -> .67).
        extensions: per fold, brand key -> the longer brand key it extends to.
        fallback: give a never-seen title's leading name words as its brand (False: abstain).
        company_names: grow a brand span the title goes on with a company word
            ("Titan Tools"); files saved before it read False (their spans unchanged).
    """

    folds: int = 2
    min_lead: int = 2
    min_lead_ratio: float = 0.5
    descriptive_min: int = 5
    max_shape_words: int = 1
    min_head: int = 3
    min_head_ratio: float = 0.3
    brands: list[list[str]] = field(default_factory=list)
    descriptive: list[list[str]] = field(default_factory=list)
    categories: list[dict[str, str]] = field(default_factory=list)
    units: list[list[str]] = field(default_factory=list)
    source: str = ""
    continue_share: float = 0.8
    extensions: list[dict[str, str]] = field(default_factory=list)
    fallback: bool = True
    company_names: bool = True

    def __post_init__(self) -> None:
        self._sets = [
            (set(b), set(d), set(u)) for b, d, u in zip(self.brands, self.descriptive, self.units)
        ]

    def _fold(self, item_id: str) -> int:
        return item_fold(item_id, self.folds)

    def brand_span(self, item_id: str, title: str) -> str | None:
        """The brand of a title: the shortest leading span learned as a brand, else the
        leading name words up to a descriptive word; None when the title starts with a
        quantity or a descriptive word (no brand stated up front)."""
        brands, descriptive, _ = self._sets[self._fold(item_id)]
        run = _name_run(title)
        if not run or _QUANTITY.fullmatch(run[0]) or match_key(run[0]) in descriptive:
            return None
        for n in range(1, len(run) + 1):
            if match_key(" ".join(run[:n])) in brands:
                return self._company(" ".join(run[: self._extended(item_id, run, n)]), title)
        if not self.fallback:
            return None  # never seen leading a title: too weak to name a brand
        out: list[str] = [run[0]]
        for word in run[1 : self.max_shape_words]:
            if match_key(word) in descriptive:
                break
            out.append(word)
        return self._company(" ".join(out), title)

    def _company(self, span: str, title: str) -> str:
        return _company_name(span, title) if self.company_names else span

    def _extended(self, item_id: str, run: list[str], n: int) -> int:
        """``n`` grown while the learned extension of the span is the title's next word."""
        extensions = self.extensions[self._fold(item_id)] if self.extensions else {}
        while n < len(run) and extensions.get(match_key(" ".join(run[:n]))) == match_key(
            " ".join(run[: n + 1])
        ):
            n += 1
        return n

    def is_brand_prefix(self, item_id: str, title: str, value: str) -> bool:
        """Whether ``value`` is a leading span of the title's name words."""
        key = match_key(value)
        run = _name_run(title)
        return bool(key) and any(
            match_key(" ".join(run[:n])) == key for n in range(1, len(run) + 1)
        )

    def category_phrases(self, item_id: str, title: str, limit: int = 1) -> list[str]:
        """Vocabulary phrases heading the title's first segment, longest first."""
        vocab = self.categories[self._fold(item_id)]
        units = self._sets[self._fold(item_id)][2]
        found = [k for k in _head_phrases(title) if k in vocab and k.split()[0] not in units]
        found.sort(key=lambda k: -len(k.split()))
        return [vocab[k] for k in found[:limit]]

    def in_vocabulary(self, item_id: str, value: str) -> str | None:
        """The vocabulary's surface form of ``value`` (fold of ``item_id``), or None."""
        return self.categories[self._fold(item_id)].get(match_key(value))

    def fingerprint(self) -> str:
        blob = json.dumps(
            [
                self.folds,
                self.min_lead,
                self.min_lead_ratio,
                self.descriptive_min,
                self.max_shape_words,
                self.min_head,
                self.min_head_ratio,
                self.source,
                [len(b) for b in self.brands],
                [len(c) for c in self.categories],
                self.continue_share,
                [len(e) for e in self.extensions],
                self.fallback,
                self.company_names,
            ]
        )
        return f"{zlib.crc32(blob.encode()):08x}"

    def save(self, path: str | Path) -> None:
        data = {"format": FORMAT, **{k: getattr(self, k) for k in _FIELDS + _OPTIONAL_FIELDS}}
        blob = json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")
        atomic_write_bytes(path, blob, gzipped=True)


_FIELDS = (
    "folds",
    "min_lead",
    "min_lead_ratio",
    "descriptive_min",
    "max_shape_words",
    "min_head",
    "min_head_ratio",
    "brands",
    "descriptive",
    "categories",
    "units",
    "source",
)
#: added later: absent from older files, read as those files meant them (no extension, a
#: fallback brand, no company name)
_OPTIONAL_FIELDS = ("continue_share", "extensions", "fallback", "company_names")
_OLD_DEFAULTS: dict[str, Any] = {"fallback": True, "company_names": False}


def load_catalogue_lexicon(path: str | Path) -> CatalogueLexicon:
    path = Path(path)
    data = read_gzip_json_document(path, "catalogue lexicon file", FORMAT)
    missing = [k for k in _FIELDS if k not in data]
    if missing:
        raise DataFormatError("missing fields", path=path, field=missing[0])
    if not all(
        len(data[k]) == data["folds"] for k in ("brands", "descriptive", "categories", "units")
    ):
        raise DataFormatError("tables must hold one entry per fold", path=path, field="brands")
    optional: dict[str, Any] = {**_OLD_DEFAULTS}
    optional.update({k: data[k] for k in _OPTIONAL_FIELDS if k in data})
    if "extensions" in optional and len(optional["extensions"]) != data["folds"]:
        raise DataFormatError("tables must hold one entry per fold", path=path, field="extensions")
    return CatalogueLexicon(**{k: data[k] for k in _FIELDS}, **optional)


def _other(counts: list[_FoldCounts], fold: int, name: str) -> Counter:
    total: Counter = Counter()
    for f, c in enumerate(counts):
        if f != fold:
            total.update(getattr(c, name))
    return total


def learn_catalogue_lexicon(
    items: Iterable[Item],
    folds: int = 2,
    min_lead: int = 2,
    min_lead_ratio: float = 0.5,
    descriptive_min: int = 5,
    max_shape_words: int = 1,
    min_head: int = 3,
    min_head_ratio: float = 0.3,
    source: str = "",
    continue_share: float = 0.8,
    fallback: bool = True,
) -> CatalogueLexicon:
    """Learn brands, descriptive words, units and category phrases from titles and text only."""
    if folds < 2:
        raise ValueError("folds must be >= 2 (an item's own title must never produce its values)")
    counts = [_FoldCounts() for _ in range(folds)]
    for item in items:
        if item.title:
            counts[item_fold(item.item_id, folds)].add(item)
    brands, descriptive, categories, units = [], [], [], []
    extensions: list[dict[str, str]] = []
    for f in range(folds):
        lead, anywhere = _other(counts, f, "lead"), _other(counts, f, "anywhere")
        brands.append(
            sorted(
                k
                for k, n in lead.items()
                if n >= min_lead and n / max(anywhere[k], n) >= min_lead_ratio
            )
        )
        extensions.append(_extensions(brands[-1], lead, continue_share))
        late = _other(counts, f, "late")
        descriptive.append(sorted(k for k, n in late.items() if n >= descriptive_min))
        seen, after = _other(counts, f, "seen"), _other(counts, f, "after_number")
        units.append(sorted(k for k, n in seen.items() if n >= 3 and after[k] / n >= 0.4))
        head, df = _other(counts, f, "head"), _other(counts, f, "title_df")
        surface: dict[str, Counter] = defaultdict(Counter)
        for o, c in enumerate(counts):
            if o != f:
                for k, forms in c.surface.items():
                    surface[k].update(forms)
        categories.append(
            {
                k: surface[k].most_common(1)[0][0]
                for k, n in sorted(head.items())
                if n >= min_head and n / max(df[k], n) >= min_head_ratio
            }
        )
    return CatalogueLexicon(
        folds,
        min_lead,
        min_lead_ratio,
        descriptive_min,
        max_shape_words,
        min_head,
        min_head_ratio,
        brands,
        descriptive,
        categories,
        units,
        source,
        continue_share,
        extensions,
        fallback,
    )


def _extensions(brands: list[str], lead: Counter, share: float) -> dict[str, str]:
    """Brand key -> the longer brand key that at least ``share`` of the titles it starts go on
    with (the one starting most titles), e.g. "gardner" -> "gardner bender"."""
    known = set(brands)
    best: dict[str, str] = {}
    for key in brands:
        parent = key
        while " " in parent:
            parent = parent.rsplit(" ", 1)[0]
            if parent in known:
                break
        else:
            continue
        if lead[key] >= share * lead[parent] and lead[key] > lead[best.get(parent, "")]:
            best[parent] = key
    return best


def resolve_catalogue_option(
    spec: str, items: list[Item], out: str | Path, source: str = ""
) -> str:
    """``--catalogue`` value -> lexicon file: ``auto`` learns it from ``items`` (the whole
    catalogue's titles and text, never gold) into ``OUT/catalogue.json.gz`` once;
    ``auto-abstain`` likewise, abstaining on never-seen leading names (``fallback=False``:
    higher brand precision, lower recall), into ``OUT/catalogue-abstain.json.gz``."""
    if spec not in ("auto", "auto-abstain"):
        return spec
    path = Path(out) / ("catalogue.json.gz" if spec == "auto" else "catalogue-abstain.json.gz")
    if not path.exists():
        learn_catalogue_lexicon(items, source=source, fallback=spec == "auto").save(path)
    return str(path)
