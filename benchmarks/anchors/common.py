"""Helpers shared by the anchor workers of ``benchmarks/speed.py`` (standard library only,
so the RecBole worker can import it from its own virtual environment)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import TypedDict

REPO = Path(__file__).resolve().parents[2]
DATASET = "rlmrec-amazon-book"
# graphrec's dataset resolution (kg.data.data_roots) without importing graphrec: $GRAPHREC_DATA_DIR, then
# ../shared/data beside the checkout
DATA_DIR = Path(os.environ.get("GRAPHREC_DATA_DIR") or REPO.parent / "shared" / "data") / DATASET


class Setup(TypedDict):
    embedding_dim: int
    num_layers: int
    batch_size: int
    learning_rate: float
    l2_weight: float
    topk: int


#: the issue's setup: LightGCN, embedding 32, 3 layers, batch 4096 (30 batches per epoch)
SETUP: Setup = {
    "embedding_dim": 32,
    "num_layers": 3,
    "batch_size": 4096,
    "learning_rate": 1e-3,
    "l2_weight": 1e-7,
    "topk": 20,
}


def worker_arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)"
    )
    parser.add_argument(
        "--evals", type=int, default=2, help="timed full-ranking evaluations (after one warm-up)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--variant", default=None, help="worker-specific variant")
    parser.add_argument(
        "--curve-epochs", type=int, default=0, help="convergence mode: train this many epochs"
    )
    parser.add_argument(
        "--curve-every", type=int, default=5, help="convergence mode: evaluate every N epochs"
    )
    return parser.parse_args()


def peak_rss_gib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(fn, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` (after one untimed warm-up call)."""
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def emit(result: dict) -> None:
    """Print the worker's result as the last stdout line (read by speed.py)."""
    result = dict(result)
    result.setdefault("peak_rss_gib", peak_rss_gib())
    torch = sys.modules.get("torch")  # every anchor runs torch; report the threads it ran with
    if torch is not None:
        result.setdefault("threads_used", torch.get_num_threads())
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
