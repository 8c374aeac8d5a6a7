r"""Denoising LLM-made edges by agreement between the text view and the graph view.

An aligned model (:class:`~alignment.model.AlignedRecommender`, contrastive) has,
for every user and item, a graph embedding :math:`e_v` and a projected text
embedding :math:`z_v` in the same space.  An edge is consistent when each endpoint's
graph view agrees with the other endpoint's text view:

* user-item edge :math:`(u, i)`: :math:`a_{ui} = \tfrac12[\cos(e_u, z_i) + \cos(z_u, e_i)]`;
* KG triple :math:`(h, r, t)` (head item, relation, tail entity): the tail is
  represented by the other items carrying the same fact, in both views,
  :math:`\bar e_t = \sum_{j \ne h} e_j`, :math:`\bar z_t = \sum_{j \ne h} z_j`, and
  :math:`a_{hrt} = \tfrac12[\cos(e_h, \bar z_t) + \cos(z_h, \bar e_t)]`
  (undefined — NaN, kept — when no other item has the fact).

:func:`denoise_interactions` / :func:`denoise_triples` drop the least consistent
edges (a share or a score threshold) and report how many, and which relations.
Scored triples (``score`` column) also feed the knowledge-aware models'
``kg_score: source`` pruning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from alignment.losses import cosine_agreement
from graphrec.data.dataset import InteractionData


@dataclass
class DenoiseReport:
    """What a denoising step did.

    Attributes:
        scored: edges with a score (NaN scores are never dropped).
        dropped: edges removed.
        threshold: the score at or below which edges were dropped.
        by_relation: per relation ``{"scored", "dropped"}`` (triples; ``interaction`` for user-item edges).
        detection: with ground truth (injected noise): ``precision`` (dropped edges that were
            fake), ``recall`` (fake edges dropped), ``fake`` (fake edges scored).
    """

    scored: int
    dropped: int
    threshold: float | None
    by_relation: dict[str, dict[str, int]] = field(default_factory=dict)
    detection: dict[str, float] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _drop_mask(
    scores: np.ndarray, drop_fraction: float | None, min_score: float | None
) -> tuple[np.ndarray, float | None]:
    if (drop_fraction is None) == (min_score is None):
        raise ValueError("give exactly one of drop_fraction and min_score")
    finite = np.isfinite(scores)
    drop = np.zeros(len(scores), dtype=bool)
    if min_score is not None:
        drop[finite] = scores[finite] < min_score
        return drop, float(min_score)
    assert drop_fraction is not None  # exactly one of the two is given
    if not 0.0 <= drop_fraction <= 1.0:
        raise ValueError(f"drop_fraction must be in [0, 1], got {drop_fraction}")
    n_drop = int(round(drop_fraction * finite.sum()))
    if n_drop == 0:
        return drop, None
    candidates = np.flatnonzero(finite)
    order = candidates[
        np.lexsort((candidates, scores[candidates]))
    ]  # lowest first, ties by position
    drop[order[:n_drop]] = True
    return drop, float(scores[order[n_drop - 1]])


@torch.no_grad()
def _views(model) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    was_training = model.training
    model.eval()
    try:
        user_g, item_g = model.graph_embeddings()
        user_z, item_z = model.projected_text()
    finally:
        model.train(was_training)
    return user_g, item_g, user_z, item_z


def train_edges(train: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``(users, items)`` of the stored entries of ``train`` in CSR order."""
    train = sp.csr_matrix(train)
    return np.repeat(np.arange(train.shape[0]), np.diff(train.indptr)), train.indices.astype(
        np.int64
    )


@torch.no_grad()
def interaction_agreement(model, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cross-view agreement :math:`a_{ui}` ``[E]`` of user-item edges (module docstring)."""
    user_g, item_g, user_z, item_z = _views(model)
    u = torch.as_tensor(np.asarray(users), dtype=torch.long, device=user_g.device)
    i = torch.as_tensor(np.asarray(items), dtype=torch.long, device=user_g.device)
    score = 0.5 * (cosine_agreement(user_g[u], item_z[i]) + cosine_agreement(user_z[u], item_g[i]))
    return score.cpu().numpy().astype(np.float64)


def denoise_interactions(
    data: InteractionData,
    scores: np.ndarray,
    *,
    drop_fraction: float | None = None,
    min_score: float | None = None,
    candidates: sp.spmatrix | None = None,
    truth: sp.spmatrix | None = None,
) -> tuple[InteractionData, DenoiseReport]:
    """Drop the least consistent training interactions.

    Args:
        data: the dataset; only ``train`` changes.
        scores: one score per stored training entry, in CSR order (:func:`train_edges`).
        drop_fraction / min_score: drop this share of the scored edges, lowest first, or
            every edge scoring below the threshold (exactly one of the two).
        candidates: only these edges may be dropped (e.g. the LLM-augmented ones; sparse
            0/1 matrix); default: every training edge.
        truth: sparse 0/1 matrix of the known fake edges, for the detection report.
    """
    users, items = train_edges(data.train)
    scores = np.asarray(scores, dtype=np.float64).copy()
    if scores.shape != (len(users),):
        raise ValueError(
            f"scores must have one value per training interaction ({len(users)}), got {scores.shape}"
        )
    if candidates is not None:
        allowed = np.asarray(sp.csr_matrix(candidates)[users, items]).ravel() != 0
        scores[~allowed] = np.nan
    drop, threshold = _drop_mask(scores, drop_fraction, min_score)
    train = data.train.tocoo()
    keep = ~drop
    cleaned = sp.csr_matrix(
        (train.data[keep], (train.row[keep], train.col[keep])), shape=train.shape
    )
    report = DenoiseReport(
        scored=int(np.isfinite(scores).sum()),
        dropped=int(drop.sum()),
        threshold=threshold,
        by_relation={
            "interaction": {"scored": int(np.isfinite(scores).sum()), "dropped": int(drop.sum())}
        },
    )
    if truth is not None:
        fake = np.asarray(sp.csr_matrix(truth)[users, items]).ravel() != 0
        report.detection = {
            "fake": int((fake & np.isfinite(scores)).sum()),
            "precision": float((drop & fake).sum() / max(1, drop.sum())),
            "recall": float((drop & fake).sum() / max(1, fake.sum())),
        }
    meta = dict(data.meta)
    meta["denoise"] = report.to_dict()
    out = InteractionData(
        name=f"{data.name}-denoised",
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        train=cleaned,
        valid=data.valid,
        test=data.test,
        item_info=data.item_info,
        user_info=data.user_info,
        kg=data.kg,
        meta=meta,
    )
    return out, report


@torch.no_grad()
def triple_agreement(model, data: InteractionData, triples: pd.DataFrame) -> np.ndarray:
    """Cross-view agreement ``[T]`` of (head item, relation, tail) triples; NaN where undefined.

    ``triples`` has columns ``head`` (raw item id), ``relation``, ``tail``.  Heads that
    are not items of ``data`` and facts no other item shares score NaN.
    """
    missing = {"head", "relation", "tail"} - set(triples.columns)
    if missing:
        raise ValueError(f"triples lack columns {sorted(missing)} (have {list(triples.columns)})")
    index = {str(raw): i for i, raw in enumerate(data.item_ids.tolist())}
    heads = np.asarray([index.get(str(h), -1) for h in triples["head"].tolist()], dtype=np.int64)
    known = heads >= 0
    scores = np.full(len(triples), np.nan)
    if not known.any():
        return scores
    _, item_g, _, item_z = _views(model)
    facts = pd.factorize(
        pd.Series(list(zip(triples["relation"].astype(str), triples["tail"].astype(str))))[known]
    )[0]
    head = torch.as_tensor(heads[known])
    fact = torch.as_tensor(facts, dtype=torch.long)
    n_facts = int(fact.max()) + 1
    sum_g = torch.zeros(n_facts, item_g.shape[1]).index_add_(0, fact, item_g[head].cpu())
    sum_z = torch.zeros(n_facts, item_z.shape[1]).index_add_(0, fact, item_z[head].cpu())
    count = torch.zeros(n_facts).index_add_(0, fact, torch.ones(len(fact)))
    others_g = sum_g[fact] - item_g[head].cpu()
    others_z = sum_z[fact] - item_z[head].cpu()
    score = 0.5 * (
        cosine_agreement(item_g[head].cpu(), others_z)
        + cosine_agreement(item_z[head].cpu(), others_g)
    )
    score[count[fact] < 2] = float("nan")
    scores[known] = score.numpy()
    return scores


def denoise_triples(
    triples: pd.DataFrame,
    scores: np.ndarray,
    *,
    drop_fraction: float | None = None,
    min_score: float | None = None,
) -> tuple[pd.DataFrame, DenoiseReport]:
    """Drop the least consistent triples; returns the kept rows with a ``score`` column and a report per relation."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(triples):
        raise ValueError(f"{len(scores)} scores for {len(triples)} triples")
    drop, threshold = _drop_mask(scores, drop_fraction, min_score)
    relations = triples["relation"].astype(str).to_numpy()
    by_relation = {
        rel: {
            "scored": int(np.isfinite(scores[relations == rel]).sum()),
            "dropped": int(drop[relations == rel].sum()),
        }
        for rel in sorted(set(relations.tolist()))
    }
    kept = triples.loc[~drop].copy()
    kept["score"] = scores[~drop]
    return kept, DenoiseReport(
        scored=int(np.isfinite(scores).sum()),
        dropped=int(drop.sum()),
        threshold=threshold,
        by_relation=by_relation,
    )
