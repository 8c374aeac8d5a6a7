#!/usr/bin/env python
"""Fit time of the ``tfidf`` encoder (TF-IDF + 1,024-d LSA) on each text dataset's catalogue.

    python benchmarks/tfidf_fit.py                   # both datasets, 3 interleaved rounds
    python benchmarks/tfidf_fit.py --rounds 5 --datasets amazon18-scientific

The fit is what text-EASE (``all-MiniLM-L6-v2+tfidf``, its default encoder) runs before every
fit and on the first request with new items after a load.  Two rows per dataset, interleaved
round by round on the same catalogue texts:

* ``current``: :func:`alignment.lexical.randomized_svd` as shipped (QR on the row side only);
* ``two-sided QR``: the same sketch with a QR of ``Mᵀ·basis`` in every power step as well
  (:func:`reference_randomized_svd`, the code before the change).

Both give the same subspace in exact arithmetic; the JSON records the largest difference of the
item-item cosines of the two encodings (what text-EASE reads).  Writes
``benchmarks/results/tfidf_fit.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ holds scripts named like packages (benchmarks/alignment_benchmark.py): import the repository's
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from alignment import lexical  # noqa: E402
from alignment.linear import linear_item_texts  # noqa: E402
from graphrec.config import load_config  # noqa: E402
from graphrec.io import atomic_write_json, atomic_write_text  # noqa: E402
from graphrec.training import load_data  # noqa: E402

DATASETS = ("ml-latest-small-tmdb", "amazon18-scientific")
RESULTS = REPO / "benchmarks" / "results"


def reference_randomized_svd(
    matrix: sp.csr_matrix, rank: int, power_iterations: int = 4, oversample: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`alignment.lexical.randomized_svd` before the change: QR on both sides of every step."""
    n_rows, n_cols = matrix.shape
    width = min(rank + oversample, n_rows, n_cols)
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(matrix @ rng.standard_normal((n_cols, width)))
    for _ in range(power_iterations):
        back, _ = np.linalg.qr(matrix.T @ basis)
        basis, _ = np.linalg.qr(matrix @ back)
    small = np.asarray((matrix.T @ basis).T)
    squares, left = np.linalg.eigh(small @ small.T)
    order = np.argsort(squares)[::-1][:rank]
    values = np.sqrt(np.clip(squares[order], 0.0, None))
    right = (small.T @ left[:, order]) / np.where(values > 0, values, 1.0)
    return values, right


VARIANTS = {"current": lexical.randomized_svd, "two-sided QR": reference_randomized_svd}


def fit_once(texts: list[str], variant: str) -> tuple[float, np.ndarray]:
    """Seconds of one :meth:`TfidfLsaEncoder.fit` with ``variant``'s SVD, and the catalogue's vectors."""
    shipped = lexical.randomized_svd
    lexical.randomized_svd = VARIANTS[variant]
    try:
        started = time.perf_counter()
        encoder = lexical.TfidfLsaEncoder().fit(texts)
        seconds = time.perf_counter() - started
    finally:
        lexical.randomized_svd = shipped
    return seconds, np.asarray(encoder.encode(texts), dtype=np.float64)


def measure(dataset: str, rounds: int) -> dict:
    """Median fit seconds of each variant over ``rounds`` interleaved rounds, and their agreement."""
    config = load_config(REPO / "configs" / dataset / "text-ease.yaml")
    texts = linear_item_texts(load_data(config.data), config.model.item_text)
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    vectors: dict[str, np.ndarray] = {}
    for round_index in range(rounds):
        for name in VARIANTS:
            took, vectors[name] = fit_once(texts, name)
            seconds[name].append(took)
            print(f"{dataset} round {round_index + 1} {name}: {took:.2f} s", flush=True)
    current, before = vectors["current"], vectors["two-sided QR"]
    return {
        "texts": len(texts),
        "dim": int(current.shape[1]),
        "seconds": {name: statistics.median(values) for name, values in seconds.items()},
        "seconds_all": seconds,
        "max_cosine_difference": float(np.abs(current @ current.T - before @ before.T).max()),
    }


def markdown(report: dict) -> str:
    lines = [
        "# tfidf encoder fit",
        "",
        f"Command: `{report['command']}` ({report['rounds']} interleaved rounds, medians; "
        f"load average {report['load_average_start']} at the start, {report['load_average_end']} at the end)"
        + (f"; {report['note']}." if report.get("note") else "."),
        "",
        "| dataset | texts | current s | two-sided QR s (before) | speed-up | max cosine difference |",
        "|---|---|---|---|---|---|",
    ]
    for dataset, row in report["datasets"].items():
        now, before = row["seconds"]["current"], row["seconds"]["two-sided QR"]
        lines.append(
            f"| {dataset} | {row['texts']:,} | {now:.2f} | {before:.2f} | {before / now:.1f}× | "
            f"{row['max_cosine_difference']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "tfidf_fit"), help="path without extension")
    parser.add_argument("--note", default="", help="how the machine was loaded, for the report")
    args = parser.parse_args(argv)
    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    report: dict = {
        "command": "python benchmarks/tfidf_fit.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "rounds": args.rounds,
        "threads": "numpy's default (all cores)",
        "load_average_start": load_start,
        "note": args.note,
        "datasets": {dataset: measure(dataset, args.rounds) for dataset in args.datasets},
    }
    report["load_average_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), report)
    text = markdown(report)
    atomic_write_text(out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
