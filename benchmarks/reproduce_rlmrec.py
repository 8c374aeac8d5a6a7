#!/usr/bin/env python
"""Reproduce RLMRec's LightGCN row (Table 1) on the paper's own Amazon-book split.

    python benchmarks/reproduce_rlmrec.py                  # 3 seeds, writes benchmarks/results/
    python benchmarks/reproduce_rlmrec.py --seeds 1 2 3 4 5

Each seed is a normal resumable training run under ``runs/reproduce_rlmrec/``
(rerunning the command continues unfinished seeds and reuses finished ones).
Writes ``benchmarks/results/reproduce_rlmrec.json`` and ``.md``: per-seed test
Recall@20 / NDCG@20 at the best validation epoch, their mean and std, the gap
to the paper, seconds per epoch and per full-ranking evaluation of the test users.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
PAPER = {"recall@20": 0.1411, "ndcg@20": 0.0856}
TOLERANCE = 0.03


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs" / "rlmrec-amazon-book" / "lightgcn.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[2023, 2024, 2025])
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "reproduce_rlmrec"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "reproduce_rlmrec"),
                        help="output path without extension (.json and .md are written)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    from graphrec.cli.common import setup_logging
    from graphrec.config import load_config, to_dict
    from graphrec.evaluation import evaluate_scorer
    from graphrec.io import atomic_write_json, atomic_write_text
    from graphrec.training import load_data, run_training

    setup_logging(args.quiet)
    base = load_config(args.config, args.overrides)
    data = load_data(base.data)
    rows = []
    for seed in args.seeds:
        config = load_config(args.config, [*args.overrides, f"train.seed={seed}", f"out_dir={args.runs_dir}",
                                           f"name=lightgcn-seed{seed}", f"train.progress={'false' if args.quiet else 'true'}"])
        result = run_training(config, data)
        # time one full-ranking evaluation of all test users, separately from training
        from graphrec.training import load_run

        _, _, model = load_run(config.run_dir, data)
        start = time.perf_counter()
        scorer = model.scorer()
        timed = evaluate_scorer(scorer, data, "test", ks=config.eval.ks, batch_size=config.eval.batch_size)
        eval_seconds = time.perf_counter() - start
        assert abs(timed.metrics["recall@20"] - result.test.metrics["recall@20"]) < 1e-9
        rows.append({
            "seed": seed,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "recall@20": result.test.metrics["recall@20"],
            "ndcg@20": result.test.metrics["ndcg@20"],
            "valid_recall@20": result.valid.metrics["recall@20"] if result.valid else None,
            "seconds_per_epoch": result.seconds_per_epoch,
            "seconds_full_eval_test": eval_seconds,
            "run_dir": str(config.run_dir),
        })
        print(f"seed {seed}: recall@20={rows[-1]['recall@20']:.4f} ndcg@20={rows[-1]['ndcg@20']:.4f} "
              f"best epoch {result.best_epoch}/{result.epochs_run}", flush=True)

    summary = {}
    for metric, paper in PAPER.items():
        values = [r[metric] for r in rows]
        mean = statistics.fmean(values)
        summary[metric] = {
            "mean": mean,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "paper": paper,
            "relative_gap": (mean - paper) / paper,
            "within_tolerance": abs(mean - paper) / paper <= TOLERANCE,
        }
    payload = {
        "benchmark": "reproduce_rlmrec",
        "command": "python benchmarks/reproduce_rlmrec.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "dataset": data.name,
        "statistics": data.statistics(),
        "config": to_dict(base),
        "seeds": rows,
        "summary": summary,
        "seconds_per_epoch_mean": statistics.fmean(r["seconds_per_epoch"] for r in rows),
        "seconds_full_eval_mean": statistics.fmean(r["seconds_full_eval_test"] for r in rows),
        "tolerance": TOLERANCE,
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine()},
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), payload)
    markdown = render_markdown(payload)
    atomic_write_text(out.with_suffix(".md"), markdown)
    print(markdown)
    return 0


def render_markdown(payload: dict) -> str:
    lines = [
        "| LightGCN on rlmrec-amazon-book | Recall@20 | NDCG@20 | best epoch | s/epoch | s/full eval (test users) |",
        "|---|---|---|---|---|---|",
    ]
    for r in payload["seeds"]:
        lines.append(f"| seed {r['seed']} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {r['best_epoch']} "
                     f"| {r['seconds_per_epoch']:.2f} | {r['seconds_full_eval_test']:.2f} |")
    s = payload["summary"]
    lines.append(f"| **graphrec, mean ± std ({len(payload['seeds'])} seeds)** | **{s['recall@20']['mean']:.4f} ± {s['recall@20']['std']:.4f}** "
                 f"| **{s['ndcg@20']['mean']:.4f} ± {s['ndcg@20']['std']:.4f}** | | {payload['seconds_per_epoch_mean']:.2f} "
                 f"| {payload['seconds_full_eval_mean']:.2f} |")
    lines.append(f"| RLMRec paper, Table 1 | {s['recall@20']['paper']:.4f} | {s['ndcg@20']['paper']:.4f} | | | |")
    lines.append(f"| relative gap | {100 * s['recall@20']['relative_gap']:+.1f}% | {100 * s['ndcg@20']['relative_gap']:+.1f}% | | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
