#!/usr/bin/env python
"""New items from their text (``recommend(..., new_items={id: text})``): cost and zero-shot quality.

    python benchmarks/new_items.py                       # text_ease of configs/ml-latest-small-tmdb/text-ease.yaml
    python benchmarks/new_items.py --held-out 200 --seed 1

``--held-out`` items (drawn among items with at least 5 training interactions) are removed
from the catalogue: their training columns are dropped and ``text_ease`` is fitted on the
rest.  They then come back as *new* items, known only by their catalogue text
(:func:`alignment.linear.linear_item_texts`), through the recommender's own path
(``TrainedRecommender.score_new_items`` / ``recommend(new_items=...)``).

Reported:

* ``fit_s``: the fit on the reduced catalogue;
* ``first_request_s``: the first new-item request of a loaded model (it factorises
  ``K + μI`` and ``A + ρI`` once) for all users and all held-out items;
* ``request_s_1_item`` / ``request_s_10_items``: later requests, one user's top-20 with 1 or
  10 new items whose texts were never encoded before (the sentence encoder runs);
* ``auc``: mean over held-out items of the ROC AUC of their scores, separating the users who
  had interacted with the item (in the original training data) from those who had not
  (0.5 = chance): how well the text prior places an item it never saw.

Results go to ``benchmarks/results/new_items.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ holds scripts named like packages: import the repository's packages, not them
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

from alignment.encoders import build_encoder  # noqa: E402
from alignment.linear import ItemTexts, TextEASE, encode_item_texts, linear_item_texts  # noqa: E402
from graphrec.config import RunConfig, load_config  # noqa: E402
from graphrec.data.dataset import InteractionData  # noqa: E402
from graphrec.inference import TrainedRecommender  # noqa: E402
from graphrec.io import atomic_write_json  # noqa: E402
from graphrec.training import load_data  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CONFIG = REPO / "configs" / "ml-latest-small-tmdb" / "text-ease.yaml"


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of ``scores`` for the boolean labels ``positive`` (ties count half)."""
    ranks = np.empty(len(scores), dtype=np.float64)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks[order] = np.arange(1, len(scores) + 1)
    # average ranks of ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts):
        if count > 1:
            ranks[order[start : start + count]] = start + (count + 1) / 2
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--held-out",
        type=int,
        default=100,
        help="items removed from the catalogue and scored as new",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "new_items.json", help="JSON result path"
    )
    return parser.parse_args(argv)


def fit_on_kept(
    data: InteractionData,
    train: sp.csr_matrix,
    config: RunConfig,
    texts: list[str],
    kept: np.ndarray,
) -> tuple[TrainedRecommender, float]:
    """text-EASE fitted on the catalogue without the held-out items (``train``: ``data``'s training
    matrix as float32 CSR), as a recommender; fit seconds."""
    # the catalogue without the held-out items, encoded as a model fitted on it would (a `tfidf`
    # part learns its vocabulary from these texts only)
    catalogue = tuple(texts[i] for i in kept)
    vectors = encode_item_texts(
        list(catalogue),
        build_encoder(config.model.encoder, catalogue=catalogue),
        config.model.cache_dir,
    )
    started = time.perf_counter()
    model = TextEASE(
        data.n_users,
        len(kept),
        config.model,
        train[:, kept],
        item_embeddings=ItemTexts(vectors, catalogue),
    )
    model.fit()
    fit_s = time.perf_counter() - started
    reduced = dataclasses.replace(
        data,
        item_ids=np.asarray(data.item_ids, dtype=object)[kept],
        train=train[:, kept],
        valid=None,
        test=None,
        item_info=None,
        kg=None,
    )
    return TrainedRecommender(model, reduced), fit_s


def request_seconds(
    rec: TrainedRecommender, texts: list[str], held: np.ndarray, n_new: int
) -> float:
    """Median seconds of a 20-item request with ``n_new`` never-seen items (5 trials)."""
    samples = []
    for trial in range(5):  # a nonce: texts never encoded before, so the encoder runs
        fresh = {
            f"fresh-{trial}-{j}": f"{texts[held[j]]} (edition {time.time_ns()})"
            for j in range(n_new)
        }
        started = time.perf_counter()
        rec.recommend([rec.user_ids[trial]], k=20, new_items=fresh)
        samples.append(time.perf_counter() - started)
    return float(np.median(samples))


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(CONFIG)
    data = load_data(config.data)
    train = sp.csr_matrix(data.train, dtype=np.float32)
    degree = np.asarray((train > 0).sum(axis=0)).ravel()
    rng = np.random.default_rng(args.seed)
    held = np.sort(rng.choice(np.flatnonzero(degree >= 5), size=args.held_out, replace=False))
    kept = np.setdiff1d(np.arange(data.n_items), held)
    texts = linear_item_texts(data, config.model.item_text)
    rec, fit_s = fit_on_kept(data, train, config, texts, kept)

    new_items = {f"new-{data.item_ids[i]}": texts[i] for i in held}
    started = time.perf_counter()
    scores = rec.score_new_items(list(rec.user_ids), new_items)  # [n_users, held_out]
    first_request_s = time.perf_counter() - started
    positives = (train[:, held] > 0).toarray()
    aucs = [auc(scores[:, j], positives[:, j]) for j in range(len(held))]
    timings = {n_new: request_seconds(rec, texts, held, n_new) for n_new in (1, 10)}
    result = {
        "dataset": config.data.dataset,
        "model": "text_ease",
        "config": str(CONFIG.relative_to(REPO)),
        "items": int(data.n_items),
        "users": int(data.n_users),
        "held_out": int(args.held_out),
        "seed": args.seed,
        "fit_s": round(fit_s, 2),
        "first_request_s": round(first_request_s, 2),
        "request_s_1_item": round(timings[1], 4),
        "request_s_10_items": round(timings[10], 4),
        "auc_mean": round(float(np.mean(aucs)), 4),
        "auc_median": round(float(np.median(aucs)), 4),
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "cpu": platform.processor() or platform.machine(),
        "command": "python benchmarks/new_items.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
