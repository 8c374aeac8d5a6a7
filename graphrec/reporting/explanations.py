"""The report's "Explanations" section: why the best run recommends what it does, for a few sampled users.

The best run is the group with the highest mean test value of the report's first metric,
and in it the seed with the highest value.  It is loaded as a
:class:`~graphrec.inference.TrainedRecommender` (from its serving bundle; checkpoints with
``weights_only=True``) and, for ``n_users`` users drawn with a fixed seed among those with
training items, its top-``k`` list is explained by :func:`graphrec.inference.explain`: the
user's training items that contribute most to each score (exact for linear closed-form
models, LightGCN's propagation weights for embedding models) and, for knowledge-aware
runs, the KG paths linking them, each fact with its extraction evidence when the KG came
from the ``kg`` package.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.errors import GraphrecError
from graphrec.experiment.runs import RunRecord
from graphrec.inference import TrainedRecommender, explain, load_recommender
from graphrec.inference.explain import item_titles
from graphrec.reporting import html as H

log = logging.getLogger(__name__)

#: users shown, list length, and the seed that draws the users (the same users on every rebuild)
EXPLAINED_USERS = 3
EXPLAINED_K = 5
SAMPLE_SEED = 0


def best_record(groups: dict[str, list[RunRecord]], metric: str) -> tuple[str, RunRecord] | None:
    """``(group label, run)`` of the best group on the mean test ``metric`` and its best seed
    (``None``: no test values)."""

    def value(record: RunRecord) -> float:
        got = (record.results.get("test") or {}).get(metric)
        return float(got) if isinstance(got, (int, float)) and np.isfinite(got) else float("-inf")

    scored = [
        (float(np.mean([value(r) for r in records])), label, records)
        for label, records in groups.items()
        if records
    ]
    scored = [s for s in scored if np.isfinite(s[0])]
    if not scored:
        return None
    _, label, records = max(scored, key=lambda s: s[0])  # max keeps the first of equal groups
    return label, max(records, key=value)


def sample_users(
    rec: TrainedRecommender, n: int = EXPLAINED_USERS, seed: int = SAMPLE_SEED
) -> list[str]:
    """``n`` raw user ids drawn without replacement among users with training items, in id order."""
    active = np.flatnonzero(np.diff(rec.train.indptr) > 0)
    chosen = np.random.default_rng(seed).choice(active, size=min(n, len(active)), replace=False)
    return [str(rec.user_ids[i]) for i in np.sort(chosen)]


def _evidence(path: dict[str, Any]) -> str:
    """The facts' provenance of one KG path, as text ("“evidence span” (source)")."""
    spans = []
    for fact in path.get("facts", []):
        for record in fact.get("provenance", []):
            if record.get("evidence"):
                spans.append(f"“{record['evidence']}” ({record.get('source') or 'kg'})")
    return "; ".join(dict.fromkeys(spans))


def _reasons_html(entry: dict[str, Any]) -> str:
    parts = [
        f"{H.esc(r['title'])} <span class=\"muted\">({100 * r['share']:.0f}%)</span>"
        for r in entry["because"]
    ]
    if not parts:
        parts = [
            H.esc(
                "popular item"
                if entry["method"] == "not decomposable"
                else "no positive contribution"
            )
        ]
    return ", ".join(parts)


def _paths_html(entry: dict[str, Any]) -> str:
    out = []
    for path in entry.get("kg_paths", []):
        evidence = _evidence(path)
        out.append(
            H.esc(path["text"])
            + (f" <span class=\"muted\">evidence: {H.esc(evidence)}</span>" if evidence else "")
        )
    return "<br>".join(out) or "-"


def user_table(rec: TrainedRecommender, user: str, entries: list[dict[str, Any]]) -> str:
    """One user's heading (their training items) and the table of explained recommendations."""
    row = rec.train[rec.user_index([user])]
    known = item_titles(rec)
    titles = [str(t) for t in (rec.item_ids if known is None else known)[row.indices]]
    shown = ", ".join(titles[:8]) + (f", … ({len(titles)} in all)" if len(titles) > 8 else "")
    out = f"<h3>user {H.esc(user)}</h3><p class=\"muted\">trained on: {H.esc(shown)}</p>"
    has_kg = any("kg_paths" in e for e in entries)
    header = ["rank", "recommended", "score", "because you interacted with (share)"] + (
        ["KG paths"] if has_kg else []
    )
    rows = []
    for rank, entry in enumerate(entries, 1):
        cells = [rank, entry["title"], entry["score"], _reasons_html(entry)]
        rows.append(cells + ([_paths_html(entry)] if has_kg else []))
    return out + H.table(header, rows, raw_columns=(3, 4), right=(0, 2))


def explanations_section(
    groups: dict[str, list[RunRecord]],
    metric: str,
    n_users: int = EXPLAINED_USERS,
    k: int = EXPLAINED_K,
    seed: int = SAMPLE_SEED,
) -> tuple[str, list[str]]:
    """``(body html, warnings)`` of the section; an empty body when there is nothing to explain."""
    best = best_record(groups, metric)
    if best is None:
        return "", []
    label, record = best
    try:
        rec = load_recommender(record.run_dir)
        users = sample_users(rec, n_users, seed)
        explained = [(user, explain(rec, user=user, k=k)) for user in users]
    except (
        GraphrecError,
        OSError,
        RuntimeError,
        ValueError,
    ) as err:  # a broken run must not sink the report
        return "", [f"{record.run_dir}: no explanations ({type(err).__name__}: {err})"]
    methods = sorted({e["method"] for _, entries in explained for e in entries})
    intro = (
        f"<p>Top-{k} recommendations of the best run, <b>{H.esc(label)}</b> (seed {record.seed}, "
        f"best test <code>{H.esc(metric)}</code>; <code>{H.esc(Path(record.run_dir))}</code>), for {len(users)} "
        f"users drawn with seed {seed}, with the user's training items that contribute most to each score "
        f"(method: {H.esc(', '.join(methods))}; share = contribution / total absolute contribution)"
        + (
            " and the knowledge-graph paths linking them, with each extracted fact's evidence"
            if any("kg_paths" in e for _, entries in explained for e in entries)
            else ""
        )
        + ". The same lists come from <code>python -m graphrec recommend RUN --explain</code> and the server's "
        "<code>/explain</code>.</p>"
    )
    return intro + "".join(user_table(rec, user, entries) for user, entries in explained), []


__all__ = ["best_record", "explanations_section", "sample_users", "user_table"]
