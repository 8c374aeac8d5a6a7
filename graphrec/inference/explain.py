"""Why an item is recommended: the user's items that contribute most, and the KG paths linking them.

Contributions of the user's training items ``j`` to the score of item ``i``:

* closed-form models whose score is linear in the user's row (EASE, ItemKNN,
  text-EASE): exactly ``X_u[j] · W[j, i]`` (EASE: ``B[j, i]``), computed from
  one-item rows and checked to add up to the score; a model that is not linear
  that way (most-popular) gets no per-item reasons (``method: "not decomposable"``);
* embedding models: the fold-in decomposition
  ``w_j · (e_j · e_i)`` with ``w_j = 1 / sqrt(|I_u| (d_j + 1))``, the weights of
  LightGCN's propagation from the user's items (``method: "propagation"``).

Knowledge-aware models (their ``ckg`` has triples) add KG paths between the
recommended item and the user's items: ``j -r2- entity -r1- i`` (or a direct
``i -r- j`` triple), most specific entities first (fewest linked items).  When
the KG came from the ``kg`` package (a folder beside ``triples.tsv`` /
``entities.tsv``), each fact carries its provenance: the extraction ``source``
and the evidence span (``surface``) from the catalogue text.
"""

from __future__ import annotations

import csv
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.inference.recommender import InvalidRequestError, TrainedRecommender
from graphrec.knowledge.sources import kg_build_folders, read_entity_labels

#: one-item rows scored at once when decomposing a closed-form score
_ROW_BLOCK = 256


def item_titles(rec: TrainedRecommender) -> np.ndarray | None:
    """Titles by internal item id from the data's ``item_info`` (``None`` without a title column)."""
    info = rec.data.item_info
    if info is None or "title" not in info.columns or len(info) != rec.n_items:
        return None
    return info["title"].astype(str).to_numpy()


def contributions(
    rec: TrainedRecommender, row: sp.csr_matrix, targets: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(items, C, method)``: the row's items ``[J]`` and their contributions ``C[J, T]`` to ``targets``."""
    items = row.indices.astype(np.int64)
    if rec.closed_form or not hasattr(rec.model, "embeddings"):
        parts = np.zeros((len(items), len(targets)), dtype=np.float64)
        for start in range(0, len(items), _ROW_BLOCK):
            block = items[start : start + _ROW_BLOCK]
            one_hot = sp.csr_matrix(
                (row.data[start : start + len(block)], block, np.arange(len(block) + 1)),
                shape=(len(block), rec.n_items),
            )
            parts[start : start + len(block)] = (
                rec.score_rows(one_hot)[:, torch.from_numpy(targets)].double().cpu().numpy()
            )
        exact = np.allclose(parts.sum(axis=0), scores, rtol=1e-3, atol=1e-5)
        return (
            items,
            parts if exact else np.zeros((0, len(targets))),
            "exact" if exact else "not decomposable",
        )
    _, item_emb = rec.embeddings()
    weights = rec.fold_in_weights(row).data.astype(np.float64)
    similarity = (
        (item_emb[torch.from_numpy(items)] @ item_emb[torch.from_numpy(targets)].T)
        .double()
        .cpu()
        .numpy()
    )
    return items, weights[:, None] * similarity, "propagation"


class KGPaths:
    """Item - entity - item paths of a model's collaborative KG, with the facts' provenance."""

    def __init__(self, ckg, provenance: dict | None = None, labels: dict | None = None) -> None:
        self.n_items = ckg.n_items
        self.entity_ids = np.asarray(ckg.entity_ids, dtype=object)
        self.relation_names = list(ckg.relation_names)
        heads, rels, tails = (
            np.asarray(a, dtype=np.int64) for a in (ckg.heads, ckg.relations, ckg.tails)
        )
        # (item, entity, relation) edges from either end of each triple that touches an item
        from_head, from_tail = heads < self.n_items, tails < self.n_items
        item = np.concatenate([heads[from_head], tails[from_tail]])
        entity = np.concatenate([tails[from_head], heads[from_tail]])
        relation = np.concatenate([rels[from_head], rels[from_tail]])
        # one relation per (item, entity) pair (the first): a sparse matrix would sum duplicates
        _, first = np.unique(item * ckg.n_entities + entity, return_index=True)
        item, entity, relation = item[first], entity[first], relation[first]
        self.by_item = sp.csr_matrix(
            (relation + 1, (item, entity)), shape=(self.n_items, ckg.n_entities)
        )
        self.by_entity = sp.csr_matrix(self.by_item.T)
        self.entity_degree = np.diff(self.by_entity.indptr)
        self.provenance = provenance or {}
        self.labels = labels or {}

    def _fact(self, item: int, relation: int, entity: int) -> dict[str, Any]:
        raw_item, raw_entity = str(self.entity_ids[item]), str(self.entity_ids[entity])
        name = self.relation_names[relation]
        fact: dict[str, Any] = {"item": raw_item, "relation": name, "entity": raw_entity}
        evidence = self.provenance.get((raw_item, name, raw_entity))
        if evidence:
            fact["provenance"] = evidence
        return fact

    def paths(self, target: int, sources: np.ndarray, limit: int = 3) -> list[dict[str, Any]]:
        """Up to ``limit`` paths from any of ``sources`` (internal items) to ``target``, most specific first."""
        sources = np.asarray(sources, dtype=np.int64)
        start, stop = self.by_item.indptr[target], self.by_item.indptr[target + 1]
        entities, relations = self.by_item.indices[start:stop], self.by_item.data[start:stop] - 1
        found: list[dict[str, Any]] = []
        for entity in entities[np.argsort(self.entity_degree[entities], kind="stable")]:
            relation = int(relations[entities == entity][0])
            if entity < self.n_items:  # a direct item-item fact
                if entity in sources:
                    found.append(
                        {
                            "from_item": str(self.entity_ids[entity]),
                            "via": None,
                            "facts": [self._fact(target, relation, int(entity))],
                        }
                    )
            else:
                e_start, e_stop = self.by_entity.indptr[entity], self.by_entity.indptr[entity + 1]
                linked = self.by_entity.indices[e_start:e_stop]
                hits = np.intersect1d(linked, sources)
                for source in hits[hits != target][: max(0, limit - len(found))]:
                    source_relation = (
                        int(self.by_entity.data[e_start:e_stop][linked == source][0]) - 1
                    )
                    raw = str(self.entity_ids[entity])
                    found.append(
                        {
                            "from_item": str(self.entity_ids[source]),
                            "via": {
                                "entity": raw,
                                "label": self.labels.get(raw, raw),
                                "linked_items": int(self.entity_degree[entity]),
                            },
                            "facts": [
                                self._fact(int(source), source_relation, int(entity)),
                                self._fact(target, relation, int(entity)),
                            ],
                        }
                    )
            if len(found) >= limit:
                break
        return found[:limit]


def read_kg_provenance(kg_source: str | None) -> tuple[dict, dict]:
    """``(provenance, labels)`` from the ``kg`` package's ``triples.tsv`` / ``entities.tsv`` found in
    ``kg_source`` or its parent folder (empty dicts when there are none)."""
    provenance: dict = {}
    for folder in kg_build_folders(kg_source):
        triples = folder / "triples.tsv"
        if triples.is_file() and not provenance:
            with open(triples, encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle, delimiter="\t"):
                    if not {"item_id", "relation", "entity"} <= row.keys():
                        break
                    key = (row["item_id"], row["relation"], row["entity"])
                    provenance.setdefault(key, []).append(
                        {"source": row.get("source") or "", "evidence": row.get("surface") or ""}
                    )
    return provenance, read_entity_labels(kg_source)


#: each recommender's KG path finder, built on its first explanation (``None``: no KG triples)
_KG_PATHS: weakref.WeakKeyDictionary[TrainedRecommender, KGPaths | None] = (
    weakref.WeakKeyDictionary()
)


def kg_paths_for(rec: TrainedRecommender) -> KGPaths | None:
    """The KG path finder of a knowledge-aware model (``None`` when the model has no KG triples)."""
    if rec in _KG_PATHS:
        return _KG_PATHS[rec]
    ckg = getattr(rec.model, "ckg", None)
    finder = None
    if ckg is not None and ckg.n_triples > 0:
        source = getattr(rec.model.config, "kg", None)
        finder = KGPaths(ckg, *read_kg_provenance(source if isinstance(source, str) else None))
    _KG_PATHS[rec] = finder
    return finder


def _reason_text(title_of, path: dict, target_title: str) -> str:
    source_title = title_of(path["from_item"])
    if path["via"] is None:
        return f"you liked {source_title}; {target_title} {path['facts'][0]['relation']} {source_title}"
    label = path["via"]["label"]
    r_source, r_target = path["facts"][0]["relation"], path["facts"][1]["relation"]
    if r_source == r_target:
        return f"you liked {source_title}; both have {r_source} {label}"
    return f"you liked {source_title} ({r_source} {label}); {target_title} ({r_target} {label})"


def explain_row(
    rec: TrainedRecommender,
    row: sp.csr_matrix,
    targets: Iterable[Any],
    scores: np.ndarray,
    top: int = 3,
    max_paths: int = 3,
) -> list[dict[str, Any]]:
    """Explanations of the raw ``targets`` for the user whose training row is ``row`` (``[1, n_items]``)."""
    raw_targets = [str(t) for t in targets]
    target_index = rec.item_index(raw_targets)
    row = sp.csr_matrix(row, dtype=np.float32)
    row.sort_indices()
    items, parts, method = contributions(
        rec, row, target_index, np.asarray(scores, dtype=np.float64)
    )
    titles = item_titles(rec)

    def title_of(raw: str) -> str:
        return raw if titles is None else titles[rec._item_index[raw]]

    finder = kg_paths_for(rec)
    out = []
    for column, (raw, target) in enumerate(zip(raw_targets, target_index)):
        reasons = []
        if parts.shape[0]:
            order = np.argsort(-parts[:, column], kind="stable")[:top]
            total = float(np.abs(parts[:, column]).sum()) or 1.0
            reasons = [
                {
                    "item": str(rec.item_ids[items[j]]),
                    "title": title_of(str(rec.item_ids[items[j]])),
                    "contribution": float(parts[j, column]),
                    "share": float(parts[j, column] / total),
                }
                for j in order
                if parts[j, column] > 0
            ]
        entry: dict[str, Any] = {
            "item": raw,
            "title": title_of(raw),
            "score": float(scores[column]),
            "method": method,
            "because": reasons,
        }
        if method == "not decomposable":
            entry["popularity"] = int(rec.popularity[target])
        if finder is not None:
            paths = finder.paths(int(target), items, max_paths)
            for path in paths:
                path["text"] = _reason_text(title_of, path, title_of(raw))
            entry["kg_paths"] = paths
        out.append(entry)
    return out


def explain(
    rec: TrainedRecommender,
    user: Any = None,
    items: Iterable[Any] | None = None,
    k: int = 10,
    basket: Iterable[Any] | None = None,
    top: int = 3,
    max_paths: int = 3,
) -> list[dict[str, Any]]:
    """Explain ``items`` (default: the user's top-``k``) for a known ``user`` or a new user's ``basket``.

    Returns one dict per item: ``item``, ``title``, ``score``, ``method``, ``because`` (the
    user's items contributing most: ``item``, ``title``, ``contribution``, ``share``) and, for
    knowledge-aware models, ``kg_paths`` (``from_item``, ``via`` entity, ``facts`` with
    provenance, and a readable ``text``).
    """
    if (user is None) == (basket is None):
        raise InvalidRequestError(
            "explain needs exactly one of user (a known user) or basket (a new user's items)"
        )
    if user is not None:
        index = rec.user_index([user])
        row = rec.train[index]
        if items is None:
            items = rec.recommend([user], k=k)[0].items
        target_index = rec.item_index(items)
        with torch.no_grad():
            scores = (
                rec.scorer()(torch.from_numpy(index))[0, torch.from_numpy(target_index)]
                .double()
                .cpu()
                .numpy()
            )
    else:
        basket_items = list(basket or ())  # once: a generator cannot be read twice
        row = rec.interaction_rows([basket_items])
        if items is None:
            items = rec.recommend_for_items(basket_items, k=k).items
        target_index = rec.item_index(items)
        scores = rec.score_rows(row)[0, torch.from_numpy(target_index)].double().cpu().numpy()
    return explain_row(rec, row, items, scores, top=top, max_paths=max_paths)


__all__ = [
    "KGPaths",
    "contributions",
    "explain",
    "explain_row",
    "kg_paths_for",
    "read_kg_provenance",
]
