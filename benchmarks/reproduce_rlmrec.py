#!/usr/bin/env python
"""Reproduce RLMRec's backbone rows (Table 1) on the paper's own Amazon-book and Yelp splits.

    python benchmarks/reproduce_rlmrec.py                  # LightGCN, 3 seeds, writes benchmarks/results/
    python benchmarks/reproduce_rlmrec.py --seeds 1 2 3 4 5
    python benchmarks/reproduce_rlmrec.py --models lightgcn sgl simgcl xsimgcl
    python benchmarks/reproduce_rlmrec.py --models sgl-rlmrec --seeds 2023   # SGL as RLMRec's code runs it
    python benchmarks/reproduce_rlmrec.py --models lightgcn sgl simgcl xsimgcl --report-only  # finished seeds only
    python benchmarks/reproduce_rlmrec.py --dataset rlmrec-yelp --models lightgcn simgcl    # the Yelp rows

Each (model, seed) is a normal resumable training run under
``runs/reproduce_rlmrec/<model>-seed<seed>`` (Yelp: ``runs/reproduce_rlmrec_yelp/...``;
rerunning the command continues unfinished seeds and reuses finished ones); model ``m``
uses ``configs/<dataset>/m.yaml``.  Writes, per model, JSON and markdown with
per-seed test Recall@20 / NDCG@20 at the best validation epoch, their mean and std,
the gap to the paper, seconds per epoch and per full-ranking evaluation of the test
users: ``benchmarks/results/reproduce_rlmrec.{json,md}`` for LightGCN (as before) and
``reproduce_rlmrec_<model>.{json,md}`` for the others; with several models also
``reproduce_rlmrec_models.md``, one summary row per model.  With ``--dataset rlmrec-yelp``
the same files are written under the stem ``reproduce_rlmrec_yelp`` instead
(``reproduce_rlmrec_yelp.{json,md}``, ``reproduce_rlmrec_yelp_<model>.{json,md}``, ...).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import TypedDict

import torch

from graphrec.cli.common import setup_logging
from graphrec.config import load_config, to_dict
from graphrec.evaluation import evaluate_scorer
from graphrec.io import atomic_write_json, atomic_write_text
from graphrec.training import TrainResult, load_data, load_run, run_training

REPO = Path(__file__).resolve().parents[1]
#: RLMRec (Ren et al., WWW 2024) Table 1, Amazon-book; XSimGCL is not in the table.
PAPERS: dict[str, dict[str, float] | None] = {
    "lightgcn": {"recall@20": 0.1411, "ndcg@20": 0.0856},
    "sgl": {"recall@20": 0.1473, "ndcg@20": 0.0913},
    "sgl-rlmrec": {
        "recall@20": 0.1473,
        "ndcg@20": 0.0913,
    },  # the same row, RLMRec's own view/negative scheme
    "simgcl": {"recall@20": 0.1512, "ndcg@20": 0.0919},
    "xsimgcl": None,
}
PAPER = PAPERS["lightgcn"]
#: RLMRec Table 1, Yelp columns (the same table; Table 2 repeats the LightGCN and SGL rows).
PAPERS_YELP: dict[str, dict[str, float] | None] = {
    "lightgcn": {"recall@20": 0.1157, "ndcg@20": 0.0733},
    "sgl": {"recall@20": 0.1197, "ndcg@20": 0.0753},
    "sgl-rlmrec": {"recall@20": 0.1197, "ndcg@20": 0.0753},
    "simgcl": {"recall@20": 0.1254, "ndcg@20": 0.0801},
    "xsimgcl": None,
}


class DatasetSetup(TypedDict):
    """The paper's rows, the default runs directory and the default output stem of a dataset."""

    papers: dict[str, dict[str, float] | None]
    runs: str
    out: str


DATASETS: dict[str, DatasetSetup] = {
    "rlmrec-amazon-book": {"papers": PAPERS, "runs": "reproduce_rlmrec", "out": "reproduce_rlmrec"},
    "rlmrec-yelp": {
        "papers": PAPERS_YELP,
        "runs": "reproduce_rlmrec_yelp",
        "out": "reproduce_rlmrec_yelp",
    },
}
DISPLAY = {
    "lightgcn": "LightGCN",
    "sgl": "SGL",
    "sgl-rlmrec": "SGL, RLMRec's views and negatives",
    "simgcl": "SimGCL",
    "xsimgcl": "XSimGCL",
}
TOLERANCE = 0.03


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default="rlmrec-amazon-book",
        help="RLMRec split to run on; picks configs/DATASET/ and the paper's columns (default: rlmrec-amazon-book)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["lightgcn"],
        metavar="MODEL",
        help="models to run, each with configs/DATASET/MODEL.yaml (default: lightgcn)",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="config file (only with a single model; default configs/DATASET/MODEL.yaml)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[2023, 2024, 2025])
    parser.add_argument(
        "--runs-dir",
        default=None,
        help="parent of the run directories (default runs/reproduce_rlmrec, Yelp: runs/reproduce_rlmrec_yelp)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output path of LightGCN's results without extension (.json and .md are written); "
        "other models write <out>_<model>.{json,md} (default benchmarks/results/reproduce_rlmrec, "
        "Yelp: benchmarks/results/reproduce_rlmrec_yelp)",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: tabulate the seeds whose runs have finished (writes only <out>_models.{md,json})",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.config is not None and len(args.models) != 1:
        parser.error("--config needs exactly one model in --models")
    if args.runs_dir is None:
        args.runs_dir = str(REPO / "runs" / DATASETS[args.dataset]["runs"])
    if args.out is None:
        args.out = str(REPO / "benchmarks" / "results" / DATASETS[args.dataset]["out"])

    setup_logging(args.quiet)
    data = None
    payloads = []
    for model in args.models:
        config_path = args.config or str(REPO / "configs" / args.dataset / f"{model}.yaml")
        data_config = load_config(config_path, args.overrides).data
        if (
            data_config.dataset in DATASETS and data_config.dataset != args.dataset
        ):  # the paper's other split
            parser.error(
                f"{config_path} trains on {data_config.dataset}, not on --dataset {args.dataset}"
            )
        if data is None:
            data = load_data(data_config)
        out = Path(args.out) if model == "lightgcn" else Path(f"{args.out}_{model}")
        payload = run_model(model, config_path, data, args, argv, out)
        if payload is not None:
            payloads.append(payload)
    if (len(args.models) > 1 or args.report_only) and payloads:
        table = render_summary(payloads)
        atomic_write_text(Path(f"{args.out}_models.md"), table)
        if args.report_only:
            atomic_write_json(Path(f"{args.out}_models.json"), {"models": payloads})
        print(table)
    return 0


def train_seed(config, data, seed: int) -> tuple[TrainResult, dict]:
    """Train one seed, then time one full-ranking evaluation of all test users apart from training."""
    result = run_training(config, data)
    # time one full-ranking evaluation of all test users, separately from training
    _, _, trained = load_run(config.run_dir, data)
    start = time.perf_counter()
    scorer = trained.scorer()
    timed = evaluate_scorer(
        scorer, data, "test", ks=config.eval.ks, batch_size=config.eval.batch_size
    )
    eval_seconds = time.perf_counter() - start
    assert abs(timed.metrics["recall@20"] - result.test.metrics["recall@20"]) < 1e-9
    row = {
        "seed": seed,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "recall@20": result.test.metrics["recall@20"],
        "ndcg@20": result.test.metrics["ndcg@20"],
        "valid_recall@20": result.valid.metrics["recall@20"] if result.valid else None,
        "seconds_per_epoch": result.seconds_per_epoch,
        "seconds_full_eval_test": eval_seconds,
        "run_dir": str(config.run_dir),
    }
    return result, row


def summarise(rows: list[dict], paper: dict[str, float] | None) -> dict:
    """Mean and standard deviation over seeds per metric, and the gap to the paper's figure."""
    summary = {}
    for metric in ("recall@20", "ndcg@20"):
        values = [r[metric] for r in rows]
        mean = statistics.fmean(values)
        summary[metric] = {
            "mean": mean,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        }
        if paper is not None:
            summary[metric].update(
                {
                    "paper": paper[metric],
                    "relative_gap": (mean - paper[metric]) / paper[metric],
                    "within_tolerance": abs(mean - paper[metric]) / paper[metric] <= TOLERANCE,
                }
            )
    return summary


def run_model(model: str, config_path: str, data, args, argv, out: Path) -> dict | None:
    """Train (or, with --report-only, collect) every seed of one model and write its tables."""
    base = load_config(config_path, args.overrides)
    rows = []
    for seed in args.seeds:
        config = load_config(
            config_path,
            [
                *args.overrides,
                f"train.seed={seed}",
                f"out_dir={args.runs_dir}",
                f"name={model}-seed{seed}",
                f"train.progress={'false' if args.quiet else 'true'}",
            ],
        )
        if args.report_only:
            row = finished_row(config, seed)
            if row is None:
                print(f"{model} seed {seed}: not finished, skipped", flush=True)
            else:
                rows.append(row)
            continue
        result, row = train_seed(config, data, seed)
        rows.append(row)
        print(
            f"{model} seed {seed}: recall@20={rows[-1]['recall@20']:.4f} ndcg@20={rows[-1]['ndcg@20']:.4f} "
            f"best epoch {result.best_epoch}/{result.epochs_run}",
            flush=True,
        )
    if not rows:
        return None

    summary = summarise(rows, DATASETS[args.dataset]["papers"].get(model))
    eval_times = [
        r["seconds_full_eval_test"] for r in rows if r.get("seconds_full_eval_test") is not None
    ]
    payload = {
        "benchmark": "reproduce_rlmrec",
        "model": model,
        "command": "python benchmarks/reproduce_rlmrec.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "dataset": data.name,
        "statistics": data.statistics(),
        "config": to_dict(base),
        "seeds": rows,
        "summary": summary,
        "seconds_per_epoch_mean": statistics.fmean(r["seconds_per_epoch"] for r in rows),
        "seconds_full_eval_mean": statistics.fmean(eval_times) if eval_times else None,
        "tolerance": TOLERANCE,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
        },
        "date": time.strftime("%Y-%m-%d"),
    }
    markdown = render_markdown(payload)
    if (
        not args.report_only
    ):  # per-model files come from real runs (they carry the timed evaluation)
        atomic_write_json(out.with_suffix(".json"), payload)
        atomic_write_text(out.with_suffix(".md"), markdown)
    print(markdown)
    return payload


def finished_row(config, seed: int) -> dict | None:
    """The row of a finished run read from its ``results.json`` (no retraining), else None."""

    path = config.run_dir / "results.json"
    if not path.exists():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    return {
        "seed": seed,
        "best_epoch": saved["best_epoch"],
        "epochs_run": saved["epochs_run"],
        "recall@20": saved["test"]["recall@20"],
        "ndcg@20": saved["test"]["ndcg@20"],
        "valid_recall@20": (saved.get("valid") or {}).get("recall@20"),
        "seconds_per_epoch": saved["seconds_per_epoch"],
        "seconds_full_eval_test": None,  # not re-timed in --report-only mode
        "run_dir": str(config.run_dir),
    }


def render_markdown(payload: dict) -> str:
    name = DISPLAY.get(payload.get("model", "lightgcn"), payload.get("model", "lightgcn"))
    lines = [
        f"| {name} on {payload.get('dataset', 'rlmrec-amazon-book')} | Recall@20 | NDCG@20 | best "
        "epoch | s/epoch | s/full eval (test users) |",
        "|---|---|---|---|---|---|",
    ]
    for r in payload["seeds"]:
        lines.append(
            f"| seed {r['seed']} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {r['best_epoch']} "
            f"| {r['seconds_per_epoch']:.2f} | {_seconds(r['seconds_full_eval_test'])} |"
        )
    s = payload["summary"]
    lines.append(
        f"| **graphrec, mean ± std ({len(payload['seeds'])} seeds)** | "
        f"**{s['recall@20']['mean']:.4f} ± {s['recall@20']['std']:.4f}** "
        f"| **{s['ndcg@20']['mean']:.4f} ± {s['ndcg@20']['std']:.4f}** | | {payload['seconds_per_epoch_mean']:.2f} "
        f"| {_seconds(payload['seconds_full_eval_mean'])} |"
    )
    if "paper" in s["recall@20"]:
        lines.append(
            f"| RLMRec paper, Table 1 | {s['recall@20']['paper']:.4f} | {s['ndcg@20']['paper']:.4f} | | | |"
        )
        lines.append(
            f"| relative gap | {100 * s['recall@20']['relative_gap']:+.1f}% | "
            f"{100 * s['ndcg@20']['relative_gap']:+.1f}% | | | |"
        )
    else:
        lines.append("| RLMRec paper, Table 1 | not reported | not reported | | | |")
    return "\n".join(lines) + "\n"


def _seconds(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render_summary(payloads: list[dict]) -> str:
    """One row per model: mean ± std over seeds, the paper's value and the gap."""
    dataset = payloads[0].get("dataset", "rlmrec-amazon-book") if payloads else "rlmrec-amazon-book"
    lines = [
        f"| model ({dataset}) | seeds | Recall@20 | paper | gap | NDCG@20 | paper | gap | s/epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in payloads:
        cells = [DISPLAY.get(p["model"], p["model"]), str(len(p["seeds"]))]
        for metric in ("recall@20", "ndcg@20"):
            s = p["summary"][metric]
            cells.append(f"{s['mean']:.4f} ± {s['std']:.4f}")
            cells += (
                [f"{s['paper']:.4f}", f"{100 * s['relative_gap']:+.1f}%"]
                if "paper" in s
                else ["n/a", "n/a"]
            )
        cells.append(f"{p['seconds_per_epoch_mean']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
