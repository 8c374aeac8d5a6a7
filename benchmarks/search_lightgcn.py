#!/usr/bin/env python
"""Does a hyper-parameter search find a LightGCN config at least as good on validation as RLMRec's?

    python benchmarks/search_lightgcn.py                        # 30 TPE trials, full training per trial
    python benchmarks/search_lightgcn.py --n-trials 6 --max-epochs 30 --timeout 3600   # a budget-limited run

The search is ``configs/search/lightgcn-amazon-book.yaml`` (TPE over learning rate,
L2 weight, layers and layer combination, embedding 32 fixed as in the paper, median
pruning, selection on validation Recall@20, one training seed for every trial).
Trial 0 is the paper's config (``configs/rlmrec-amazon-book/lightgcn.yaml``), so the
best trial is at least as good as the paper's on validation by construction; what
the benchmark measures is by how much another config beats it, and what that costs.

Resumable: the study and every trial's run live under ``runs/search/``; rerunning the
same command continues (an interrupted trial resumes from its last epoch).  With
``--max-epochs N`` every trial, the paper's included, is cut at N epochs: a separate
study (``...-eN``), because a truncated trial is not comparable with a full one.

Writes ``benchmarks/results/search_lightgcn[_eN].json`` and ``.md``: the paper trial's
and the best trial's validation Recall@20 (the selection criterion) and, for
information only, their test Recall@20 / NDCG@20, trial counts, time per trial.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from graphrec.cli.common import setup_logging
from graphrec.experiment.search import load_search_config, run_search
from graphrec.io import atomic_write_json, atomic_write_text

REPO = Path(__file__).resolve().parents[1]
SEARCH = REPO / "configs" / "search" / "lightgcn-amazon-book.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=str(SEARCH), help="search YAML file")
    parser.add_argument(
        "--n-trials", type=int, help="total finished trials (default: the file's n_trials)"
    )
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="stop starting new trials after this long"
    )
    parser.add_argument(
        "--max-epochs", type=int, help="cut every trial at this many epochs (a separate study)"
    )
    parser.add_argument(
        "--out-dir", default=str(REPO / "runs" / "search"), help="parent directory of the study"
    )
    parser.add_argument(
        "--results",
        default=str(REPO / "benchmarks" / "results"),
        help="where the JSON/MD results go",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run-config override for every trial (e.g. train.num_threads=1)",
    )
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def trial_test_metrics(trial: dict | None) -> dict | None:
    """The test metrics of a trial's run (None while it has no finished run)."""
    if trial is None or not trial.get("run_dir"):
        return None
    path = Path(trial["run_dir"]) / "results.json"
    return json.loads(path.read_text()).get("test") if path.exists() else None


def trial_row(trial: dict | None) -> dict | None:
    """One row of the results: the trial's parameters, validation value, epochs and test metrics."""
    if trial is None:
        return None
    test = trial_test_metrics(trial) or {}
    return {
        "trial": trial["number"],
        "params": trial["params"],
        "valid_recall@20": trial["value"],
        "best_epoch": trial.get("best_epoch"),
        "epochs_run": trial.get("epochs_run"),
        "train_seconds": trial.get("train_seconds"),
        "test_recall@20": test.get("recall@20"),
        "test_ndcg@20": test.get("ndcg@20"),
    }


def main(argv=None) -> int:
    args = parse_args(argv)

    setup_logging(args.quiet)
    search_overrides = [f"out_dir={args.out_dir}"]
    run_overrides = list(args.overrides)
    suffix = ""
    if args.max_epochs:
        suffix = f"_e{args.max_epochs}"
        run_overrides.append(f"train.epochs={args.max_epochs}")
    config = load_search_config(args.config, search_overrides)
    if args.max_epochs:
        config.name = f"{config.search_name}-e{args.max_epochs}"
    started = time.perf_counter()
    result = run_search(
        config, run_overrides, n_trials=args.n_trials, timeout_s=args.timeout, quiet=args.quiet
    )
    wall = time.perf_counter() - started

    paper_params = dict(config.enqueue[0]) if config.enqueue else {}
    paper = next(
        (
            t
            for t in sorted(result.trials, key=lambda t: t["number"])
            if t["state"] == "COMPLETE" and t["params"] == paper_params
        ),
        None,
    )
    best = next((t for t in result.trials if t["number"] == result.best_trial), None)

    counts = result.counts()
    finished = [
        t for t in result.trials if t["state"] in ("COMPLETE", "PRUNED") and t.get("train_seconds")
    ]
    payload = {
        "benchmark": "search_lightgcn",
        "command": "python benchmarks/search_lightgcn.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "search": str(Path(args.config).relative_to(REPO))
        if Path(args.config).is_relative_to(REPO)
        else args.config,
        "study": str(result.directory),
        "max_epochs": args.max_epochs,
        "metric": f"valid {result.metric}",
        "trials": counts,
        "paper_config": trial_row(paper),
        "best": trial_row(best),
        "best_is_at_least_as_good_as_paper": (
            None if paper is None or best is None else best["value"] >= paper["value"]
        ),
        "improvement_over_paper": (
            None
            if paper is None or best is None or not paper["value"]
            else (best["value"] - paper["value"]) / paper["value"]
        ),
        "another_config_beats_paper": (
            None if paper is None or best is None else best["number"] != paper["number"]
        ),
        "seconds_this_call": wall,
        "seconds_per_complete_trial": (
            sum(t["train_seconds"] for t in finished if t["state"] == "COMPLETE")
            / max(1, sum(1 for t in finished if t["state"] == "COMPLETE"))
        ),
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "date": time.strftime("%Y-%m-%d"),
        "note": (
            "Selection on validation only; test metrics are reported for information and never used. "
            "The paper's config is trial 0, so 'at least as good' holds by construction once it has finished."
        ),
    }
    out = Path(args.results) / f"search_lightgcn{suffix}"
    atomic_write_json(out.with_suffix(".json"), payload)
    markdown = render_markdown(payload, result.table(10))
    atomic_write_text(out.with_suffix(".md"), markdown)
    print(markdown)
    return 0


def render_markdown(payload: dict, trials_table: str) -> str:
    def fmt(x, digits=4):
        return "-" if x is None else f"{x:.{digits}f}"

    cut = f" (every trial cut at {payload['max_epochs']} epochs)" if payload["max_epochs"] else ""
    lines = [
        f"Search: `{payload['search']}`{cut}; "
        f"trials: {', '.join(f'{n} {s.lower()}' for s, n in sorted(payload['trials'].items()))}.",
        "",
        "| LightGCN on rlmrec-amazon-book | trial | valid Recall@20 (selection) | test Recall@20 | "
        "test NDCG@20 | best epoch | parameters |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, key in (("paper config (RLMRec)", "paper_config"), ("best found", "best")):
        r = payload[key]
        if r is None:
            lines.append(f"| {name} | - | not finished yet | | | | |")
            continue
        lines.append(
            f"| {name} | {r['trial']} | {fmt(r['valid_recall@20'])} | {fmt(r['test_recall@20'])} | "
            f"{fmt(r['test_ndcg@20'])} | {r['best_epoch'] or '-'} | `{json.dumps(r['params'], sort_keys=True)}` |"
        )
    if payload["improvement_over_paper"] is not None:
        verdict = (
            "another config beats the paper"
            if payload["another_config_beats_paper"]
            else "no other config beat the paper"
        )
        lines += [
            "",
            f"Best vs paper on validation: {100 * payload['improvement_over_paper']:+.1f}% "
            f"({verdict}); "
            f"{payload['seconds_per_complete_trial']:.0f} s of training per complete trial.",
        ]
    lines += ["", "Top trials (validation):", "", trials_table]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
