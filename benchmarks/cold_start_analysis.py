#!/usr/bin/env python
"""Why cold-start items stay hard: how far above text item-kNN can any text scorer get?

    python benchmarks/cold_start_analysis.py            # amazon18-scientific, ml-latest-small-tmdb

Issue 14 asks cold-start items (10% of the items held out entirely, ranked among themselves) to
reach Recall@20 ≥ 1.5× text item-kNN.  This script measures, on a *validation* cold split only
(10% of the warm items of ``benchmarks/text_models.py``'s seed-0 cold split held out again; their
training and validation interactions are the targets; the real cold items are not touched), the
scorers a text model can use for an item without interactions:

* **text item-kNN** (k = 50, the benchmark's baseline);
* **text-EASE's prior** — the column of the text matrix S (how text-EASE scores such items today);
* **collaborative neighbours** — the item's column of B built from its text neighbours' columns,
  ``B[:, W] (K_WW + μI)⁻¹ K_W,j`` (kernel ridge on the text embeddings over the warm items W);
* each of them **plus the item's popularity**, predicted from its text (kernel ridge on log
  degree) — and, as a ceiling no model can reach, the *true* popularity of the held-out items.

Scores are standardised per user over the candidates before the popularity term is added
(weight 1).  Writes ``benchmarks/results/cold_start_analysis.{json,md}``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alignment.coldstart import (  # noqa: E402
    cold_items_of,
    cold_start_split,
    evaluate_cold_start,
    text_item_knn_scorer,
    validation_cold_split,
)
from alignment.encoders import EMBEDDED_ENCODER  # noqa: E402
from alignment.linear import (  # noqa: E402
    item_text_embeddings,
    neighbour_columns,
    text_ease_weights,
    text_gram_factor,
    text_matrix,
)
from graphrec.config import load_config  # noqa: E402
from graphrec.io import atomic_write_json, atomic_write_text  # noqa: E402
from graphrec.training.run import load_data  # noqa: E402

DATASETS = ["amazon18-scientific", "ml-latest-small-tmdb"]
#: text-EASE settings of configs/<dataset>/text-ease.yaml (chosen on warm validation)
TEXT_EASE = {"amazon18-scientific": (200.0, 30.0), "ml-latest-small-tmdb": (200.0, 10.0)}
Scorer = Callable[[torch.Tensor], torch.Tensor]


def matrix_scorer(train: sp.csr_matrix, columns: np.ndarray, items: np.ndarray) -> Scorer:
    """Scores ``X_u C`` on ``items`` (``columns``: ``[n_items, len(items)]``), ``-inf`` elsewhere."""
    x = sp.csr_matrix(train, dtype=np.float32)
    x.data[:] = 1.0
    full = np.asarray(columns, dtype=np.float32)

    def score(users: torch.Tensor) -> torch.Tensor:
        out = torch.full((len(users), train.shape[1]), float("-inf"))
        out[:, torch.as_tensor(items)] = torch.from_numpy(
            np.asarray(x[users.numpy()] @ full, dtype=np.float32)
        )
        return out

    return score


def warm_text_ease(
    split, e: torch.Tensor, l2: float, mu: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """text-EASE's ``B`` fitted on ``split``'s training matrix (``e``: unit text rows, float64) and the
    indices of the items with training interactions."""
    x = sp.csr_matrix(split.train, dtype=np.float64)
    x.data[:] = 1.0
    b = text_ease_weights(torch.from_numpy((x.T @ x).toarray()), text_matrix(e, "lae", mu), l2, 1.0)
    warm = torch.from_numpy(np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() > 0))
    return b, warm


def standardised(scores: torch.Tensor) -> torch.Tensor:
    """Each row as z-scores (mean 0, standard deviation 1)."""
    return (scores - scores.mean(1, keepdim=True)) / (scores.std(1, keepdim=True) + 1e-9)


def scorers(split, vectors, l2, mu) -> dict[str, tuple[Scorer, np.ndarray]]:
    """text-EASE's prior and collaborative-neighbours scorers, with the warm B they share."""
    items = cold_items_of(split)
    e = torch.as_tensor(vectors, dtype=torch.float64)
    b, warm = warm_text_ease(split, e, l2, mu)
    # the same columns as TextEASE's cold_items: neighbours
    neighbours = neighbour_columns(
        b, warm, e[warm], e[torch.as_tensor(items)], text_gram_factor(e[warm], mu)
    )
    return {
        "text-EASE prior": (matrix_scorer(split.train, b[:, items].numpy(), items), items),
        "collaborative neighbours": (matrix_scorer(split.train, neighbours.numpy(), items), items),
    }


def with_popularity(scorer: Scorer, items: np.ndarray, popularity: np.ndarray) -> Scorer:
    """Per-user standardised scores over ``items`` plus the standardised ``popularity`` of each."""
    index = torch.as_tensor(items)
    bonus = torch.as_tensor(
        (popularity - popularity.mean()) / popularity.std(), dtype=torch.float32
    )

    def score(users: torch.Tensor) -> torch.Tensor:
        raw = scorer(users)
        out = torch.full_like(raw, float("-inf"))
        out[:, index] = standardised(raw[:, index]) + bonus
        return out

    return score


def predicted_popularity(split, vectors, items, mu=30.0) -> np.ndarray:
    """log(1 + degree) of ``items`` predicted from text by kernel ridge over the warm items."""
    degree = np.asarray((split.train != 0).sum(axis=0)).ravel()
    warm = np.flatnonzero(degree > 0)
    y = np.log1p(degree[warm])
    e = np.asarray(vectors, dtype=np.float64)
    alpha = np.linalg.solve(e[warm] @ e[warm].T + mu * np.eye(len(warm)), y - y.mean())
    return e[items] @ (e[warm].T @ alpha) + y.mean()


def analyse(dataset: str, encoder: str) -> dict:
    data = load_data(load_config(REPO / "configs" / dataset / "lightgcn.yaml").data)
    vectors = item_text_embeddings(data, "catalogue+attributes", encoder)
    split = validation_cold_split(cold_start_split(data, fraction=0.1, seed=0))
    items = cold_items_of(split)
    l2, mu = TEXT_EASE[dataset]
    found = {"text item-kNN": (text_item_knn_scorer(split.train, vectors, k=50), items)}
    found.update(scorers(split, vectors, l2, mu))
    predicted = predicted_popularity(split, vectors, items)
    true = np.log1p(np.asarray(split.test.sum(axis=0)).ravel()[items])
    rows = {}
    for name, (scorer, _) in found.items():
        variants = {
            name: scorer,
            f"{name} + popularity from text": with_popularity(scorer, items, predicted),
            f"{name} + true popularity (ceiling)": with_popularity(scorer, items, true),
        }
        for label, variant in variants.items():
            metrics = evaluate_cold_start(variant, split, ks=(20,)).metrics
            rows[label] = {m: float(metrics[m]) for m in ("recall@20", "ndcg@20")}
            print(f"{dataset:22s} {label:55s} R@20 {rows[label]['recall@20']:.4f}", flush=True)
    base = rows["text item-kNN"]["recall@20"]
    for row in rows.values():
        row["x_knn"] = row["recall@20"] / base
    return {
        "rows": rows,
        "candidates": len(items),
        "popularity_correlation": float(np.corrcoef(predicted, true)[0, 1]),
    }


def markdown(report: dict) -> str:
    lines = [
        "| dataset | scorer (validation cold split) | R@20 | N@20 | × text item-kNN |",
        "|---|---|---|---|---|",
    ]
    for dataset, block in report["datasets"].items():
        for label, row in block["rows"].items():
            lines.append(
                f"| {dataset} | {label} | {row['recall@20']:.4f} | {row['ndcg@20']:.4f} | "
                f"{row['x_knn']:.2f} |"
            )
    lines += ["", f"Encoder: {report.get('encoder', EMBEDDED_ENCODER)}.", ""]
    for dataset, block in report["datasets"].items():
        lines.append(
            f"{dataset}: {block['candidates']} held-out candidates; correlation of the popularity "
            f"predicted from text with the true one {block['popularity_correlation']:.2f}."
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument(
        "--encoder",
        default=EMBEDDED_ENCODER,
        help="text encoder setting (default: the embedded one)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "cold_start_analysis"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = {
        "machine": f"{platform.machine()} {platform.system()}, torch {torch.__version__}",
        "encoder": args.encoder,
        "datasets": {dataset: analyse(dataset, args.encoder) for dataset in args.datasets},
    }
    atomic_write_json(args.out.with_suffix(".json"), report)
    atomic_write_text(args.out.with_suffix(".md"), markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
