"""Scoring a build against what text can support, against gold, and by hand labels.

Three views (see the package README):

* grounded precision: share of kept text triples whose tail the source text supports
  (after validation; the share before validation is reported next to it);
* per relation covered by gold: precision, recall over all gold facts, and recall
  over the *text-supported* gold facts (gold values found in the text: the ceiling of
  any extractor);
* relations gold does not cover: counts, examples, and the precision of a
  hand-labelled sample.

Knowledge-mode triples (``source = llm_knowledge``) are scored separately against
gold, never pooled with grounded ones.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kg.data import GoldFact, Item
from kg.errors import DataFormatError
from kg.llm.journal import read_journal
from kg.pipeline import MODES, journal_name
from kg.schema import Schema
from kg.text import EvidenceIndex, match_key


@dataclass(frozen=True)
class Label:
    item_id: str
    relation: str
    tail: str
    correct: bool


def read_labels(path: str | Path) -> list[Label]:
    """Hand labels: TSV ``item_id, relation, tail, correct`` (1/0), extra columns ignored;
    lines starting with ``#`` before the header say how the labels were made (skipped)."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError("file not found", path=path)
    labels = []
    with open(path, encoding="utf-8", newline="") as handle:
        lines = list(handle)
        skipped = 0
        while skipped < len(lines) and lines[skipped].startswith("#"):
            skipped += 1
        reader = csv.reader(lines[skipped:], delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header or header[:4] != ["item_id", "relation", "tail", "correct"]:
            raise DataFormatError(
                "header must start with item_id, relation, tail, correct",
                path=path,
                line=skipped + 1,
            )
        for number, row in enumerate(reader, start=skipped + 2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 4 or row[3].strip() not in ("0", "1"):
                raise DataFormatError(
                    "expected 4+ fields with correct = 0 or 1",
                    path=path,
                    line=number,
                    field="correct",
                )
            labels.append(
                Label(row[0].strip(), row[1].strip(), row[2].strip(), row[3].strip() == "1")
            )
    return labels


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def run_triples(out: str | Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """Kept triples per source from the journals: (item, relation, tail, type)."""
    by_source: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    for mode in MODES:
        path = Path(out) / journal_name(mode)
        if path.exists():
            _, records = read_journal(path)
            for rec in records:
                if rec["status"] == "done":
                    for relation, tail, ttype in rec.get("triples", []):
                        by_source[rec.get("source", "text")].append(
                            (rec["item_id"], relation, tail, ttype)
                        )
    return by_source


def lexicon_triples(out: str | Path) -> list[tuple[str, str, str, str]]:
    """Text triples contributed by the lexicon step (journal field ``lexicon``), not by the model."""
    path = Path(out) / journal_name("text")
    found: list[tuple[str, str, str, str]] = []
    if path.exists():
        for rec in read_journal(path)[1]:
            if rec["status"] == "done":
                found.extend((rec["item_id"], r, t, ty) for r, t, ty in rec.get("lexicon", []))
    return found


def done_items(out: str | Path, mode: str) -> set[str]:
    path = Path(out) / journal_name(mode)
    if not path.exists():
        return set()
    return {r["item_id"] for r in read_journal(path)[1] if r["status"] == "done"}


def _gold_value(schema: Schema, relation: str, value: str) -> str:
    """Gold values through the same vocabulary as predictions (``en`` -> ``English``)."""
    for ttype in schema.target_types(relation):
        if schema.is_closed(ttype):
            canonical = schema.canonical_value(ttype, value)
            if canonical is not None:
                return canonical
    return value


def _supported(schema: Schema, relation: str, value: str, index: EvidenceIndex) -> bool:
    spellings = [value]
    for ttype in schema.target_types(relation):
        if schema.is_closed(ttype):
            canonical = schema.canonical_value(ttype, value)
            if canonical is not None:
                spellings = [
                    s for s in schema.vocabulary_spellings(ttype, canonical) if len(s) > 2
                ] or [canonical]
    return any(index.supports(s) for s in spellings)


def score_against_gold(
    predictions: list[tuple[str, str, str, str]],
    gold: list[GoldFact],
    items: dict[str, Item],
    item_ids: set[str],
    schema: Schema,
    relations: list[str] | None = None,
) -> dict[str, Any]:
    """Per gold relation: precision, recall (all gold), recall (text-supported gold)."""
    gold_rel = sorted({g.relation for g in gold if schema.canonical_relation(g.relation)})
    if relations is not None:
        gold_rel = [r for r in gold_rel if r in relations]
    indexes = {i: EvidenceIndex(items[i].evidence) for i in item_ids if i in items}
    gold_sets: dict[str, set[tuple[str, str]]] = defaultdict(set)
    gold_supported: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for g in gold:
        rel = schema.canonical_relation(g.relation)
        if rel not in gold_rel or g.item_id not in indexes:
            continue
        value = _gold_value(schema, rel, g.value)
        key = (g.item_id, match_key(value))
        gold_sets[rel].add(key)
        if _supported(schema, rel, value, indexes[g.item_id]):
            gold_supported[rel].add(key)
    pred_sets: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for item_id, relation, tail, _ in predictions:
        if item_id in indexes:
            pred_sets[relation].add((item_id, match_key(tail)))
    items_with_gold = {rel: {i for i, _ in gold_sets[rel]} for rel in gold_rel}
    table: dict[str, Any] = {}
    for rel in gold_rel:
        # precision only over items gold covers for this relation: no gold list, no verdict
        preds = {p for p in pred_sets[rel] if p[0] in items_with_gold[rel]}
        hit = preds & gold_sets[rel]
        hit_sup = pred_sets[rel] & gold_supported[rel]
        table[rel] = {
            "predicted": len(pred_sets[rel]),
            "predicted_on_gold_items": len(preds),
            "correct": len(hit),
            "precision": _ratio(len(hit), len(preds)),
            "gold": len(gold_sets[rel]),
            "recall": _ratio(len(pred_sets[rel] & gold_sets[rel]), len(gold_sets[rel])),
            "gold_text_supported": len(gold_supported[rel]),
            "text_supported_share": _ratio(len(gold_supported[rel]), len(gold_sets[rel])),
            "recall_text_supported": _ratio(len(hit_sup), len(gold_supported[rel])),
        }
    return table


def evaluate_run(
    out: str | Path,
    schema: Schema,
    items: list[Item],
    gold: list[GoldFact],
    labels: list[Label] | None = None,
    examples: int = 5,
) -> dict[str, Any]:
    """All measures for one build folder."""
    by_id = {it.item_id: it for it in items}
    triples = run_triples(out)
    report: dict[str, Any] = {}
    text_triples = triples.get("text", [])
    text_items = done_items(out, "text")
    if text_items:
        supported = 0
        for item_id, relation, tail, _ in text_triples:
            it = by_id.get(item_id)
            if it is not None and _supported(schema, relation, tail, EvidenceIndex(it.evidence)):
                supported += 1
        cand = cand_sup = 0
        _, records = read_journal(Path(out) / journal_name("text"))
        for rec in records:
            cand += int(rec.get("candidates", 0))
            cand_sup += int(rec.get("candidates_supported", 0))
        gold_relations = sorted({g.relation for g in gold})
        covered = score_against_gold(text_triples, gold, by_id, text_items, schema)
        uncovered: dict[str, Any] = {}
        per_rel = Counter(r for _, r, _, _ in text_triples)
        for rel, count in sorted(per_rel.items()):
            if rel in gold_relations:
                continue
            sample = [(i, t) for i, r, t, _ in text_triples if r == rel][:examples]
            uncovered[rel] = {"count": count, "examples": [f"{i}: {t}" for i, t in sample]}
        report["text"] = {
            "items": len(text_items),
            "triples": len(text_triples),
            "triples_per_item": _ratio(len(text_triples), len(text_items)),
            "grounded_precision": _ratio(supported, len(text_triples)),
            "grounded_share_before_validation": _ratio(cand_sup, cand),
            "gold": covered,
            "not_in_gold": uncovered,
        }
        from_lexicon = lexicon_triples(out)
        if from_lexicon:
            # what the model contributed vs the deterministic lexicon step, scored apart
            lex_set = set(from_lexicon)
            model_only = [t for t in text_triples if t not in lex_set]
            report["text"]["by_origin"] = {
                "llm": {
                    "triples": len(model_only),
                    "gold": score_against_gold(model_only, gold, by_id, text_items, schema),
                },
                "lexicon": {
                    "triples": len(from_lexicon),
                    "gold": score_against_gold(from_lexicon, gold, by_id, text_items, schema),
                },
            }
        if labels:
            report["text"]["hand_labels"] = score_labels(labels, text_triples)
    know = triples.get("llm_knowledge", [])
    know_items = done_items(out, "knowledge")
    if know_items:
        rels = list(schema.knowledge.get("relations") or [])
        report["llm_knowledge"] = {
            "items": len(know_items),
            "triples": len(know),
            "gold": score_against_gold(
                know, gold, by_id, know_items, schema, relations=rels or None
            ),
        }
    return report


def score_labels(labels: list[Label], triples: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    """Precision of the hand-labelled sample per relation, and how many of its triples this run has."""
    run_keys = {(i, r, match_key(t)) for i, r, t, _ in triples}
    per_rel: dict[str, list[bool]] = defaultdict(list)
    in_run = 0
    for lab in labels:
        per_rel[lab.relation].append(lab.correct)
        in_run += (lab.item_id, lab.relation, match_key(lab.tail)) in run_keys
    return {
        "labelled": len(labels),
        "labelled_in_this_run": in_run,
        "precision": _ratio(sum(lab.correct for lab in labels), len(labels)),
        "per_relation": {
            r: {"labelled": len(v), "precision": _ratio(sum(v), len(v))}
            for r, v in sorted(per_rel.items())
        },
    }


def format_report(report: dict[str, Any]) -> str:
    """Human-readable tables of :func:`evaluate_run`'s result."""
    lines: list[str] = []
    for source in ("text", "llm_knowledge"):
        part = report.get(source)
        if not part:
            continue
        lines.append(f"== {source}: {part['items']} items, {part['triples']} triples")
        if source == "text":
            lines.append(
                f"grounded precision {part['grounded_precision']}  "
                f"(before validation {part['grounded_share_before_validation']})"
            )
        lines.append(
            f"{'relation':<20}{'pred':>6}{'prec':>8}{'gold':>7}{'recall':>8}{'gold@text':>10}{'recall@text':>12}"
        )
        for rel, row in part["gold"].items():
            lines.append(
                f"{rel:<20}{row['predicted']:>6}{_f(row['precision']):>8}{row['gold']:>7}{_f(row['recall']):>8}"
                f"{row['gold_text_supported']:>10}{_f(row['recall_text_supported']):>12}"
            )
        for rel, row in (part.get("not_in_gold") or {}).items():
            lines.append(f"{rel:<20}{row['count']:>6}  e.g. {'; '.join(row['examples'][:3])}")
        for origin, sub in (part.get("by_origin") or {}).items():
            lines.append(f"  from {origin} only ({sub['triples']} triples):")
            for rel, row in sub["gold"].items():
                if row["predicted"]:
                    lines.append(
                        f"  {rel:<18}{row['predicted']:>6}{_f(row['precision']):>8}{row['gold']:>7}"
                        f"{_f(row['recall']):>8}{row['gold_text_supported']:>10}{_f(row['recall_text_supported']):>12}"
                    )
        labels = part.get("hand_labels")
        if labels:
            lines.append(
                f"hand-labelled sample: {labels['labelled']} triples, precision {_f(labels['precision'])}"
            )
            for rel, row in labels["per_relation"].items():
                lines.append(f"  {rel:<18}{row['labelled']:>4}  precision {_f(row['precision'])}")
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
