r"""The collaborative knowledge graph (CKG): users, items and KG entities in one graph.

Entity ids follow the KGAT/KGIN convention: entity ``i < n_items`` **is** internal
item ``i``; the other entities follow (``n_items .. n_entities-1``).  In the unified
node space used for propagation, users come first, then entities:

* node ``u`` (``0 <= u < n_users``) = user ``u``;
* node ``n_users + e`` = entity ``e`` (so node ``n_users + i`` is item ``i``, the same
  layout as LightGCN's user-item graph, extended by the other entities).

Edge types of :meth:`CollaborativeKG.edge_index`: ``0`` = interacts (user -> item),
``1..R`` = the KG relations (head -> tail), and with ``inverse=True`` also
``R+1`` = interacted-by and ``R+2..2R+1`` the inverse KG relations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from graphrec.data.dataset import InteractionData, KnowledgeGraph

INTERACTS = "interacts"


@dataclass
class CollaborativeKG:
    """Users, items and entities with typed edges, in internal integer ids.

    Attributes:
        n_users, n_items: sizes of the interaction matrix.
        n_entities: number of KG entities, items included (``>= n_items``).
        relation_names: the KG relations; relation ``r`` of :attr:`relations` is
            ``relation_names[r]`` (the interaction relation is not in this list).
        heads, relations, tails: int64 arrays, one KG triple per position (entity ids).
        scores: float per triple (source confidence / agreement score), or ``None``.
        entity_ids: raw id of every entity (items: the raw item id).
        train: the ``[n_users, n_items]`` training interactions.
        meta: provenance and build statistics.
    """

    n_users: int
    n_items: int
    n_entities: int
    relation_names: list[str]
    heads: np.ndarray
    relations: np.ndarray
    tails: np.ndarray
    entity_ids: np.ndarray
    train: sp.csr_matrix
    scores: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ sizes
    @property
    def n_relations(self) -> int:
        """Number of KG relations (without the interaction relation)."""
        return len(self.relation_names)

    @property
    def n_triples(self) -> int:
        return int(len(self.heads))

    @property
    def n_nodes(self) -> int:
        """Users + entities (items included)."""
        return self.n_users + self.n_entities

    @property
    def num_edge_types(self) -> int:
        """Edge types of :meth:`edge_index` with ``inverse=True`` (interaction and KG, both directions)."""
        return 2 * (self.n_relations + 1)

    # ------------------------------------------------------------- edge lists
    def interactions(self) -> tuple[np.ndarray, np.ndarray]:
        coo = self.train.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64)

    def edge_index(self, inverse: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Typed edges over the unified node space: ``(edge_index [2, M], edge_type [M])``."""
        users, items = self.interactions()
        src = [users, self.n_users + self.heads]
        dst = [self.n_users + items, self.n_users + self.tails]
        types = [np.zeros(len(users), np.int64), 1 + self.relations]
        if inverse:
            r = self.n_relations
            src += [self.n_users + items, self.n_users + self.tails]
            dst += [users, self.n_users + self.heads]
            types += [np.full(len(users), r + 1, np.int64), r + 2 + self.relations]
        edge_index = torch.from_numpy(np.stack([np.concatenate(src), np.concatenate(dst)]))
        return edge_index, torch.from_numpy(np.concatenate(types))

    def edge_type_names(self, inverse: bool = True) -> list[str]:
        names = [INTERACTS, *self.relation_names]
        if inverse:
            names += [f"{INTERACTS}_inv", *(f"{r}_inv" for r in self.relation_names)]
        return names

    def adjacency(self) -> sp.csr_matrix:
        """The symmetric 0/1 adjacency of the unified graph (users + entities), duplicates merged."""
        users, items = self.interactions()
        rows = np.concatenate([users, self.n_users + self.heads])
        cols = np.concatenate([self.n_users + items, self.n_users + self.tails])
        n = self.n_nodes
        upper = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
        both = (upper + upper.T).tocsr()
        both.data[:] = 1.0
        return both

    def to_hetero_data(self):
        """A PyG :class:`~torch_geometric.data.HeteroData` view.

        Node types ``user``, ``item`` and ``entity`` (entities that are not items,
        numbered from 0); edge types ``(user, interacts, item)`` and one
        ``(src_type, relation, dst_type)`` per KG relation and end types, with
        ``edge_score`` when scores are known.  Reverse edges can be added with
        ``torch_geometric.transforms.ToUndirected``.
        """
        from torch_geometric.data import HeteroData

        out = HeteroData()
        out["user"].num_nodes = self.n_users
        out["item"].num_nodes = self.n_items
        out["entity"].num_nodes = self.n_entities - self.n_items
        users, items = self.interactions()
        out["user", INTERACTS, "item"].edge_index = torch.from_numpy(np.stack([users, items]))
        head_item = self.heads < self.n_items
        tail_item = self.tails < self.n_items
        for r, name in enumerate(self.relation_names):
            of_r = self.relations == r
            for h_is_item, t_is_item in (
                (True, True),
                (True, False),
                (False, True),
                (False, False),
            ):
                mask = of_r & (head_item == h_is_item) & (tail_item == t_is_item)
                if not mask.any():
                    continue
                h = self.heads[mask] - (0 if h_is_item else self.n_items)
                t = self.tails[mask] - (0 if t_is_item else self.n_items)
                key = ("item" if h_is_item else "entity", name, "item" if t_is_item else "entity")
                out[key].edge_index = torch.from_numpy(np.stack([h, t]))
                if self.scores is not None:
                    out[key].edge_score = torch.from_numpy(self.scores[mask].astype(np.float32))
        return out

    # ----------------------------------------------------------------- pruning
    def subset(self, keep: np.ndarray, reason: str = "") -> CollaborativeKG:
        """A CKG with only the triples where ``keep`` is true; unused non-item entities
        are dropped and the others renumbered (items keep their ids)."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_triples,):
            raise ValueError(f"keep mask has shape {keep.shape}, expected ({self.n_triples},)")
        heads, rels, tails = self.heads[keep], self.relations[keep], self.tails[keep]
        used = np.zeros(self.n_entities, bool)
        used[: self.n_items] = True
        used[heads] = True
        used[tails] = True
        new_id = np.cumsum(used) - 1
        history = list(self.meta.get("pruning", []))
        history.append({"reason": reason, "kept": int(keep.sum()), "dropped": int((~keep).sum())})
        return replace(
            self,
            n_entities=int(used.sum()),
            heads=new_id[heads],
            relations=rels,
            tails=new_id[tails],
            entity_ids=self.entity_ids[used],
            scores=None if self.scores is None else self.scores[keep],
            meta={**self.meta, "pruning": history},
        )

    def prune(
        self,
        scores: np.ndarray | None = None,
        min_score: float | None = None,
        drop_fraction: float | None = None,
        keep_unscored: bool = True,
    ) -> CollaborativeKG:
        """Drop the triples whose score is below ``min_score`` and/or the ``drop_fraction``
        with the lowest scores.

        Args:
            scores: one score per triple; default: :attr:`scores` (the source's).
            min_score: drop triples scoring strictly below it.
            drop_fraction: drop this share of the scored triples, lowest first (ties
                broken by triple position, so the result is deterministic).
            keep_unscored: triples with a NaN score (e.g. no collaborative evidence)
                are kept when true, dropped when false.
        """
        if scores is None:
            if self.scores is None:
                raise ValueError(
                    "the KG carries no scores: pass scores= (e.g. collaborative_agreement(ckg))"
                )
            scores = self.scores
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (self.n_triples,):
            raise ValueError(f"scores have shape {scores.shape}, expected ({self.n_triples},)")
        scored = ~np.isnan(scores)
        keep = np.ones(self.n_triples, bool) if keep_unscored else scored.copy()
        if min_score is not None:
            keep &= ~(scored & (scores < min_score))
        if drop_fraction is not None:
            if not 0.0 <= drop_fraction <= 1.0:
                raise ValueError(f"drop_fraction must be in [0, 1], got {drop_fraction}")
            candidates = np.flatnonzero(scored)
            order = candidates[np.lexsort((candidates, scores[candidates]))]
            keep[order[: int(round(drop_fraction * len(candidates)))]] = False
        return self.subset(
            keep,
            reason=f"min_score={min_score} drop_fraction={drop_fraction} keep_unscored={keep_unscored}",
        )

    def select_relations(self, names) -> CollaborativeKG:
        """Only the triples of the given relations (relation ids are kept)."""
        unknown = sorted(set(names) - set(self.relation_names))
        if unknown:
            raise ValueError(f"unknown relations {unknown}; the KG has {self.relation_names}")
        wanted = np.isin(self.relations, [self.relation_names.index(n) for n in names])
        return self.subset(wanted, reason=f"relations={sorted(names)}")

    # -------------------------------------------------------------- reporting
    def statistics(self) -> dict:
        head_item = self.heads < self.n_items
        tail_item = self.tails < self.n_items
        linked = np.zeros(self.n_items, bool)
        linked[self.heads[head_item]] = True
        linked[self.tails[tail_item]] = True
        per_relation = np.bincount(self.relations, minlength=self.n_relations)
        return {
            "users": self.n_users,
            "items": self.n_items,
            "entities": self.n_entities,
            "non_item_entities": self.n_entities - self.n_items,
            "relations": self.n_relations,
            "triples": self.n_triples,
            "interactions": int(self.train.nnz),
            "items_with_triples": int(linked.sum()),
            "item_coverage": float(linked.mean()) if self.n_items else 0.0,
            "triples_touching_items": int((head_item | tail_item).sum()),
            "triples_per_relation": {
                name: int(c) for name, c in zip(self.relation_names, per_relation)
            },
            "scored": self.scores is not None,
        }


def build_collaborative_kg(
    data: InteractionData,
    kg: KnowledgeGraph | None,
    *,
    relations: list[str] | None = None,
    min_entity_degree: int = 1,
    drop_self_loops: bool = True,
) -> CollaborativeKG:
    """Map a raw-id KG onto ``data``'s internal ids and join it with the training interactions.

    Args:
        data: the dataset (its ``train`` split and raw item ids are used).
        kg: raw-id triples and item links (see :mod:`graphrec.knowledge.sources`), or
            ``None`` for a graph of interactions only.  Without link rows, entities
            whose id is a raw item id of ``data`` are those items.  An entity linked to
            several items stands for each of them (its triples are repeated); one linked
            only to items ``data`` does not have is dropped with its triples.
        relations: keep only these relations (default: all).
        min_entity_degree: drop non-item entities that occur in fewer triples (1 =
            keep all; 2 drops leaves attached to a single item, which carry no
            collaborative signal).
        drop_self_loops: drop triples whose head and tail map to the same entity.
    """
    n_users, n_items = data.n_users, data.n_items
    item_ids = np.asarray(data.item_ids, dtype=object)
    if kg is None or len(kg.triples) == 0:
        return CollaborativeKG(
            n_users,
            n_items,
            n_items,
            [],
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            item_ids.copy(),
            data.train,
            None,
            {"source_triples": 0},
        )
    triples = kg.triples
    has_score = "score" in triples.columns
    meta: dict = {"source_triples": int(len(triples))}
    if relations is not None:
        triples = triples.loc[triples["relation"].isin(set(relations))]
        meta["after_relation_filter"] = int(len(triples))
    link, triples = _linked_entities(kg.item_entity, triples, item_ids, meta)
    mapping, entity_ids = _entity_nodes(link, triples, item_ids)
    frame, relation_names = _mapped_triples(triples, mapping, has_score, drop_self_loops)
    ckg = CollaborativeKG(
        n_users=n_users,
        n_items=n_items,
        n_entities=len(entity_ids),
        relation_names=relation_names,
        heads=frame["h"].to_numpy(np.int64),
        relations=frame["relation"].to_numpy(np.int64),
        tails=frame["t"].to_numpy(np.int64),
        entity_ids=entity_ids,
        train=data.train,
        scores=frame["score"].to_numpy(np.float64) if has_score else None,
        meta=meta,
    )
    ckg = ckg.subset(np.ones(ckg.n_triples, bool), reason="drop unused entities")
    if min_entity_degree > 1:
        degree = np.bincount(np.concatenate([ckg.heads, ckg.tails]), minlength=ckg.n_entities)
        rare = degree < min_entity_degree
        rare[:n_items] = False
        ckg = ckg.subset(
            ~(rare[ckg.heads] | rare[ckg.tails]), reason=f"min_entity_degree={min_entity_degree}"
        )
    ckg.meta["pruning"] = [
        p for p in ckg.meta.get("pruning", []) if p["reason"] != "drop unused entities"
    ]
    return ckg


def _linked_entities(
    link: pd.DataFrame, triples: pd.DataFrame, item_ids: np.ndarray, meta: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Entity id -> node rows of the linked entities (``entity``, ``node``), and the triples kept.

    Linked entities map to their items (one row per item); entities standing only for
    items this dataset does not have (filtered out by k-core, or another catalogue) are
    dropped with their triples.  Without link rows, entities named like raw item ids are
    those items.  Build statistics go to ``meta``.
    """
    if len(link):
        index = {raw: i for i, raw in enumerate(item_ids.tolist())}
        link_items = link["item_id"].map(index)
        link = pd.DataFrame({"entity": link["entity_id"].to_numpy(), "node": link_items.to_numpy()})
        absent = set(link.loc[link["node"].isna(), "entity"]) - set(
            link.loc[link["node"].notna(), "entity"]
        )
        if absent:
            gone = triples["head"].isin(absent) | triples["tail"].isin(absent)
            triples = triples.loc[~gone]
            meta["triples_of_absent_items"] = int(gone.sum())
        link = link.dropna()
        link["node"] = link["node"].astype(np.int64)
        meta["linked_items"] = int(link["node"].nunique())
    else:
        link = pd.DataFrame({"entity": item_ids, "node": np.arange(len(item_ids), dtype=np.int64)})
        meta["linked_items"] = "by raw item id"
    return link.drop_duplicates(), triples


def _entity_nodes(
    link: pd.DataFrame, triples: pd.DataFrame, item_ids: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """The full entity -> node mapping (linked entities, then the others numbered after the
    items) and the raw id of every entity node (items first)."""
    n_items = len(item_ids)
    linked_entities = set(link["entity"].tolist())
    others = pd.unique(pd.concat([triples["head"], triples["tail"]], ignore_index=True))
    others = np.asarray([e for e in others.tolist() if e not in linked_entities], dtype=object)
    mapping = pd.concat(
        [
            link,
            pd.DataFrame(
                {"entity": others, "node": n_items + np.arange(len(others), dtype=np.int64)}
            ),
        ],
        ignore_index=True,
    )
    return mapping, np.concatenate([item_ids, others])


def _mapped_triples(
    triples: pd.DataFrame, mapping: pd.DataFrame, has_score: bool, drop_self_loops: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Triples on entity nodes (``h``, ``relation`` index, ``t``, ``score``), sorted, and the relation names.

    An entity standing for several items repeats its triples; duplicates (the same mapped
    triple from several sources) keep their best score.
    """
    relation_names = sorted(pd.unique(triples["relation"]).tolist())
    rel_index = {r: i for i, r in enumerate(relation_names)}
    frame = pd.DataFrame(
        {
            "head": triples["head"].to_numpy(),
            "relation": triples["relation"].map(rel_index).to_numpy(np.int64),
            "tail": triples["tail"].to_numpy(),
            "score": triples["score"].to_numpy(np.float64) if has_score else np.zeros(len(triples)),
        }
    )
    frame = frame.merge(
        mapping.rename(columns={"entity": "head", "node": "h"}), on="head", how="inner"
    )
    frame = frame.merge(
        mapping.rename(columns={"entity": "tail", "node": "t"}), on="tail", how="inner"
    )
    if drop_self_loops:
        frame = frame.loc[frame["h"] != frame["t"]]
    frame = frame.groupby(["h", "relation", "t"], as_index=False, sort=True)["score"].max()
    return frame, relation_names


def collaborative_agreement(ckg: CollaborativeKG) -> np.ndarray:
    r"""How well each triple agrees with the interactions: one score per triple.

    For a triple linking item :math:`i` to entity :math:`e` (either direction), the
    score is the cosine between :math:`i`'s audience (its L2-normalised column of the
    training matrix) and the summed audiences of the *other* items linked to
    :math:`e`.  A triple that attaches an item to a group of items its users never
    touch scores near 0: a candidate for pruning.  Triples between two non-item
    entities, leaves (entities linked to no other item) and items without training
    interactions get NaN (no evidence either way).
    """
    scores = np.full(ckg.n_triples, np.nan)
    head_item = ckg.heads < ckg.n_items
    tail_item = ckg.tails < ckg.n_items
    both = head_item & tail_item
    # item-item triples: cosine of the two audiences
    audience = sp.csr_matrix(ckg.train.T, dtype=np.float64)
    audience.data[:] = 1.0
    norms = np.sqrt(np.asarray(audience.multiply(audience).sum(1)).ravel())
    with np.errstate(divide="ignore"):
        inv = np.where(norms > 0, 1.0 / norms, 0.0)
    x = sp.diags(inv) @ audience  # [n_items, n_users], unit rows (or zero)
    x = x.tocsr()
    if both.any():
        h, t = ckg.heads[both], ckg.tails[both]
        dots = np.asarray(x[h].multiply(x[t]).sum(1)).ravel()
        valid = (norms[h] > 0) & (norms[t] > 0)
        scores[np.flatnonzero(both)[valid]] = dots[valid]
    one = head_item ^ tail_item
    if one.any():
        item = np.where(head_item, ckg.heads, ckg.tails)[one]
        entity = np.where(head_item, ckg.tails, ckg.heads)[one]
        # incidence entity x item (each item once per entity)
        pairs = np.unique(np.stack([entity, item]), axis=1)
        incidence = sp.csr_matrix(
            (np.ones(pairs.shape[1]), (pairs[0], pairs[1])), shape=(ckg.n_entities, ckg.n_items)
        )
        profile = (incidence @ x).tocsr()  # [n_entities, n_users]: summed unit audiences
        profile_sq = np.asarray(profile.multiply(profile).sum(1)).ravel()
        members = np.asarray(incidence.sum(1)).ravel()
        dot = np.asarray(x[item].multiply(profile[entity]).sum(1)).ravel()  # x_i . P_e
        self_sq = (norms[item] > 0).astype(np.float64)  # |x_i|^2 (1 or 0)
        rest_dot = dot - self_sq  # x_i . (P_e - x_i)
        rest_sq = np.maximum(profile_sq[entity] - 2 * dot + self_sq, 0.0)
        valid = (members[entity] > 1) & (self_sq > 0) & (rest_sq > 1e-12)
        out = np.full(len(item), np.nan)
        out[valid] = rest_dot[valid] / np.sqrt(rest_sq[valid])
        scores[np.flatnonzero(one)] = out
    return scores
