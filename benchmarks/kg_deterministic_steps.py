"""The deterministic steps of issue 19 alone, on every item with text (no model, seconds).

* products (amazon18-scientific): the brand span and category phrase of the catalogue
  lexicon (``kg/brands.py``, learned from titles and text only, cross-fitted), scored
  against the gold brand / category path; plus the share of items whose gold brand is a
  leading span of the title at all (the ceiling of any title-based brand extractor).
* products' categories from the shop's own category tree: the cross-fitted lexicon of the
  *other* items' curated categories (``kg lexicon --relation category``), its best ``top``
  phrases in the text, for a grid of keyphraseness thresholds; fold 0 chooses (the most
  recall at precision >= .60), fold 1 confirms.
* films genre (ml-latest-small-tmdb): the closed TMDB genre vocabulary of the films schema
  (synonyms mapped) found in the overview, every spelling or only genre nouns and words
  followed by a film noun ("war film"); measured here, not shipped (see kg/README.md).
* films (ml-latest-small-tmdb): the known-entities step (``kg/known.py``: directors and
  cast credited on other items, recognised in the overview; ``directed_by`` only with a
  director cue in the text, ``kg/cues.py``), scored against gold, with and without the cues,
  on all films and per fold (fold 0 developed the cues, fold 1 confirms them).

    python benchmarks/kg_deterministic_steps.py

Writes ``benchmarks/results/kg_deterministic_steps.json``.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from kg_quality import wilson  # noqa: E402

from kg.brands import learn_catalogue_lexicon  # noqa: E402
from kg.data import dataset_file, read_gold, read_items  # noqa: E402
from kg.io import atomic_write_json  # noqa: E402
from kg.known import learn_known_entities  # noqa: E402
from kg.lexicon import build_lexicon, item_fold  # noqa: E402
from kg.schema import load_schema  # noqa: E402
from kg.text import EvidenceIndex, match_key  # noqa: E402


def _score(pred: dict[str, dict[str, set[str]]], gold, items) -> dict[str, dict]:
    """Per relation: precision over predictions, recall over text-supported gold, with intervals."""
    out = {}
    for rel, by_item in pred.items():
        gold_sets: dict[str, set[str]] = defaultdict(set)
        for g in gold:
            if g.relation == rel:
                gold_sets[g.item_id].add(match_key(g.value))
        k = n = hit = sup = 0
        for it in items:
            supported = {v for v in gold_sets[it.item_id] if EvidenceIndex(it.evidence).supports(v)}
            sup += len(supported)
            for value in by_item.get(it.item_id, set()):
                n += 1
                k += value in gold_sets[it.item_id]
                hit += value in supported
        out[rel] = {
            "predicted": n,
            "precision": round(k / n, 4) if n else None,
            "precision_ci95": wilson(k, n),
            "gold_text_supported": sup,
            "recall_text": round(hit / sup, 4) if sup else None,
            "recall_text_ci95": wilson(hit, sup),
        }
    return out


def _lexicon_predictions(lex, items) -> dict[str, dict[str, set[str]]]:
    pred: dict[str, dict[str, set[str]]] = {"brand": {}, "category": {}}
    for it in items:
        brand = lex.brand_span(it.item_id, it.title)
        pred["brand"][it.item_id] = {match_key(brand)} if brand else set()
        pred["category"][it.item_id] = {
            match_key(c) for c in lex.category_phrases(it.item_id, it.title)
        }
    return pred


def product_inputs() -> tuple[list, list]:
    """amazon18-scientific's items with text (title, description) and its gold facts."""
    items = read_items(
        dataset_file("amazon18-scientific", "items.tsv"), text_columns=("title", "description")
    )
    return [it for it in items if it.text], read_gold(
        dataset_file("amazon18-scientific", "gold_facts.tsv")
    )


def products(items: list, gold: list) -> dict:
    """The catalogue lexicon as shipped (``scores``), abstaining on never-seen names
    (``fallback=False``), and as it was before issue 19's last brand changes (a two-word
    fallback, no company names); on all items and per crc32 fold (fold 0 chose the changes,
    fold 1 checks them)."""
    variants = {
        "scores": learn_catalogue_lexicon(items),
        "scores_abstaining": learn_catalogue_lexicon(items, fallback=False),
        "scores_before": learn_catalogue_lexicon(items, max_shape_words=2),
    }
    variants["scores_before"].company_names = False
    out: dict = {"items": len(items)}
    for name, lex in variants.items():
        pred = _lexicon_predictions(lex, items)
        out[name] = _score(pred, gold, items)
        for fold, role in ((0, "development"), (1, "confirmation")):
            part = [it for it in items if item_fold(it.item_id, 2) == fold]
            out[f"{name}_fold{fold}_{role}"] = _score(pred, gold, part)
    brands = defaultdict(set)
    for g in gold:
        if g.relation == "brand":
            brands[g.item_id].add(match_key(g.value))
    leading = sum(
        bool({match_key(" ".join(it.title.split()[:n])) for n in range(1, 6)} & brands[it.item_id])
        for it in items
    )
    out["gold_brand_is_a_leading_title_span"] = round(leading / len(items), 4)
    return out


def _known_predictions(known, items) -> dict[str, dict[str, set[str]]]:
    pred: dict[str, dict[str, set[str]]] = {"starring": {}, "directed_by": {}}
    for it in items:
        for rel, name in known.candidates(it.item_id, it.evidence):
            pred[rel].setdefault(it.item_id, set()).add(match_key(name))
    return pred


def films() -> dict:
    """Known entities with and without the context cues (``kg/cues.py``), on all films and per
    crc32 fold: the cues were written looking at fold 0 only (development) and checked on fold 1."""
    items = [it for it in read_items(dataset_file("ml-latest-small-tmdb", "items.tsv")) if it.text]
    gold = read_gold(dataset_file("ml-latest-small-tmdb", "gold_facts.tsv"))
    known = learn_known_entities(items, gold)
    out: dict = {"items": len(items)}
    for cues in (True, False):
        known.cues = cues
        pred = _known_predictions(known, items)
        name = "scores" if cues else "scores_without_cues"
        out[name] = _score(pred, gold, items)
        for fold, role in ((0, "development"), (1, "confirmation")):
            part = [it for it in items if item_fold(it.item_id, 2) == fold]
            out[f"{name}_fold{fold}_{role}"] = _score(pred, gold, part)
    return out


#: genre spellings that are genre words whatever the sentence ("a comedy", "animated"); the
#: others are also everyday words ("family", "war", "mystery", "crime", "magic", "history")
_GENRE_NOUNS = {
    "comedy", "comedies", "comedic", "documentary", "documentaries", "drama", "dramas", "horror",
    "thriller", "thrillers", "animation", "animated", "cartoon", "science fiction", "sci-fi",
    "scifi", "sci fi", "musical", "tv movie", "television film", "western", "westerns", "suspense",
}  # fmt: skip
#: a genre word followed, within two words, by a noun naming a film or a story ("war film")
_FILM_NOUN = re.compile(
    r"^(?:[\s-]+[\w'-]+){0,2}?[\s-]+(?:films?|movies?|comed(?:y|ies)|dramas?|thrillers?|"
    r"stor(?:y|ies)|tales?|adventures?|epics?|features?|documentar(?:y|ies)|satire|spoof|parody|"
    r"musicals?|classics?|flicks?|pictures?|sagas?|series|romp|fable|chiller|caper|genre|yarn)\b",
    re.IGNORECASE,
)


def _genre_cue(text: str, spelling: str) -> bool:
    if spelling.casefold() in _GENRE_NOUNS:
        return True
    pattern = r"(?<![\w-])" + re.escape(spelling) + r"(?![\w-])"
    return any(
        _FILM_NOUN.match(text[m.end() : m.end() + 40])
        for m in re.finditer(pattern, text, re.IGNORECASE)
    )


def genre_words() -> dict:
    """Genre from the closed TMDB vocabulary (the films schema's, synonyms mapped) without a
    model: every genre a spelling of which is in the overview (``word``), and only where the
    spelling is a genre noun or is followed by a film noun (``cue``; measured, not shipped)."""
    items = [it for it in read_items(dataset_file("ml-latest-small-tmdb", "items.tsv")) if it.text]
    gold = read_gold(dataset_file("ml-latest-small-tmdb", "gold_facts.tsv"))
    genres = load_schema("films").vocabularies["Genre"]
    out: dict = {}
    for mode in ("word", "cue"):
        pred: dict[str, dict[str, set[str]]] = {"genre": {}}
        for it in items:
            ev = EvidenceIndex(it.evidence)
            for genre, spellings in genres.items():
                found = [x for x in [genre, *spellings] if len(x) > 2 and ev.supports(x)]
                if found and (mode == "word" or any(_genre_cue(it.evidence, x) for x in found)):
                    pred["genre"].setdefault(it.item_id, set()).add(match_key(genre))
        out[mode] = _score(pred, gold, items)["genre"]
        for fold, role in ((0, "development"), (1, "confirmation")):
            part = [it for it in items if item_fold(it.item_id, 2) == fold]
            out[f"{mode}_fold{fold}_{role}"] = _score(pred, gold, part)["genre"]
    return out


def category_lexicon(items: list, gold: list) -> dict:
    """The category lexicon step alone: per (min_ratio, top), scored per fold."""
    folds = {f: [it for it in items if item_fold(it.item_id, 2) == f] for f in (0, 1)}
    grid: dict[str, dict] = {}
    for ratio in (0.1, 0.2, 0.3, 0.5):
        lex = build_lexicon(items, gold, "category", min_ratio=ratio)
        for top in (1, 2, 3):
            pred = {
                "category": {
                    it.item_id: {
                        match_key(p) for p, _ in lex.candidates(it.item_id, it.evidence)[:top]
                    }
                    for it in items
                }
            }
            grid[f"min_ratio={ratio},top={top}"] = {
                f"fold{f}": _score(pred, gold, part)["category"] for f, part in folds.items()
            }
    eligible = {k: v["fold0"] for k, v in grid.items() if (v["fold0"]["precision"] or 0) >= 0.60}
    chosen = max(eligible, key=lambda k: eligible[k]["recall_text"] or 0)
    return {"grid": grid, "chosen_on_fold0": chosen, "fold1_at_chosen": grid[chosen]["fold1"]}


def main() -> int:
    items, gold = product_inputs()
    results = {
        "command": "python benchmarks/kg_deterministic_steps.py",
        "products": products(items, gold),
        "products_category_lexicon": category_lexicon(items, gold),
        "films": films(),
        "films_genre_words": genre_words(),
    }
    atomic_write_json(REPO / "benchmarks" / "results" / "kg_deterministic_steps.json", results)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
