#!/usr/bin/env python
"""Top-K export throughput and memory: ``python -m graphrec recommend``'s code path on big graphs.

    python benchmarks/recommend.py amazon                 # all rlmrec-amazon-book users, LightGCN
    python benchmarks/recommend.py synthetic --size 4e7   # the 1M-user graph of benchmarks/scaling.py
    python benchmarks/recommend.py synthetic --size 4e7 --max-users 100000   # a prefix of its users

The model is LightGCN as configured by ``configs/rlmrec-amazon-book/lightgcn.yaml``
(embedding 32, 3 layers), built from the training graph without training: scoring and
ranking cost the same for trained and untrained weights.  It is wrapped in a
:class:`~graphrec.inference.TrainedRecommender` and every user's top-``k`` (training
items excluded) is written to a CSV by :func:`graphrec.inference.export.export_topk`
(blocks, fsync per block, progress file, atomic rename) — the command's own path.

Reported: users per second of the export, and memory: the process RSS once the
recommender is ready (model, graph, embeddings) and the peak RSS above it during the
export (sampled every 10 ms), which the block size bounds (``--memory-mb``, default
256 MB of scores per block).  Results go to ``benchmarks/results/recommend_<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ holds scripts named like packages: import the repository's packages, not them
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import torch  # noqa: E402

from graphrec.config import load_config  # noqa: E402
from graphrec.data.synthetic import power_law_interactions  # noqa: E402
from graphrec.inference import TrainedRecommender  # noqa: E402
from graphrec.inference.export import export_topk  # noqa: E402
from graphrec.models import build_model  # noqa: E402
from graphrec.training import load_data, seed_everything  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CONFIG = REPO / "configs" / "rlmrec-amazon-book" / "lightgcn.yaml"
GIB = 2**30


def rss_bytes() -> int:
    """This process's resident set size (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples this process's RSS every ``interval`` seconds while active."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self) -> PeakRSS:
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def build(args):
    config = load_config(CONFIG)
    if args.dataset == "amazon":
        data = load_data(config.data)
        name = "amazon"
    else:
        n = int(float(args.size))
        n_users, n_items = n // 40, n * 3 // 400  # benchmarks/scaling.py's shapes
        started = time.perf_counter()
        data = power_law_interactions(n_users, n_items, n, seed=0)
        print(
            f"generated {n_users} users x {n_items} items x {data.train.nnz} in {time.perf_counter() - started:.0f} s"
        )
        name = f"synthetic_{args.size}"
    seed_everything(0)
    model = build_model(config.model, data.n_users, data.n_items, data.train, data=data)
    return name, data, model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=("amazon", "synthetic"))
    parser.add_argument(
        "--size",
        default="4e7",
        help="synthetic: interactions (users = size/40, items = 3 size/400)",
    )
    parser.add_argument("--max-users", type=int, default=None, help="export only the first N users")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--memory-mb", type=float, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    name, data, model = build(args)
    rec = TrainedRecommender(model, data, memory_mb=args.memory_mb, device=args.device)
    started = time.perf_counter()
    rec.scorer()  # propagation once: part of getting ready, not of the per-user cost
    ready_seconds = time.perf_counter() - started
    users = data.user_ids.tolist()[: args.max_users]
    with tempfile.TemporaryDirectory() as tmp, PeakRSS() as memory:
        baseline = memory.peak
        figures = export_topk(
            rec, Path(tmp) / "topk.csv", [str(u) for u in users], k=args.k, progress=False
        )
        out_bytes = (Path(tmp) / "topk.csv").stat().st_size
    result = {
        "benchmark": "recommend",
        "graph": name,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "train_interactions": int(data.train.nnz),
        "users_exported": len(users),
        "k": args.k,
        "model": "lightgcn (configs/rlmrec-amazon-book/lightgcn.yaml, untrained weights)",
        "device": args.device,
        "threads": args.threads,
        "memory_mb": args.memory_mb,
        "block_users": rec.block_users,
        "embeddings_seconds": ready_seconds,
        "export_seconds": figures["seconds"],
        "users_per_second": len(users) / figures["seconds"],
        "rss_ready_gib": baseline / GIB,
        "peak_above_ready_gib": (memory.peak - baseline) / GIB,
        "output_mib": out_bytes / 2**20,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg": os.getloadavg(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "command": " ".join(
            ["python", "benchmarks/recommend.py", *(argv if argv is not None else sys.argv[1:])]
        ),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = (
        RESULTS
        / f"recommend_{name}{'' if args.max_users is None else f'_first{args.max_users}'}.json"
    )
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
