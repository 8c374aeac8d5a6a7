"""``graphrec-evaluate`` / ``python evaluate.py``: evaluate saved runs and compare them.

* ``graphrec-evaluate RUN [--split test] [--mask-valid] [--ks 10 20 50]`` re-evaluates a
  run's best checkpoint without retraining.
* ``graphrec-evaluate compare RUN_A RUN_B [--split test]`` prints a table of metric
  means with paired Wilcoxon signed-rank and paired t-test p-values per metric, using the
  per-user vectors saved with each run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from graphrec.cli.common import setup_logging, user_errors_exit
from graphrec.errors import GraphrecError
from graphrec.evaluation import EvaluationResult, compare_results, format_comparison_table, format_metrics_table


def _eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphrec-evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run directory written by graphrec-train")
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument("--mask-valid", action="store_true", help="also mask validation items when ranking for test")
    parser.add_argument("--ks", type=int, nargs="+", help="cut-offs (default: the run's eval.ks)")
    parser.add_argument("--batch-size", type=int, help="users per scoring batch (default: the run's eval.batch_size)")
    parser.add_argument("--save", metavar="NPZ", help="also save the per-user vectors to this .npz file")
    parser.add_argument("--quiet", "-q", action="store_true")
    return parser


def _compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphrec-evaluate compare",
                                     description="Paired significance tests between two runs (B against A).")
    parser.add_argument("run_a", help="baseline run directory (or a per-user .npz file)")
    parser.add_argument("run_b", help="compared run directory (or a per-user .npz file)")
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument("--metrics", nargs="+", help="per-user metrics to compare (default: all)")
    return parser


def _per_user_path(run: str, split: str) -> Path:
    path = Path(run)
    if path.is_dir():
        path = path / "per_user" / f"{split}.npz"
    if not path.is_file():
        raise GraphrecError(f"{path}: no per-user results (train the run to completion first)")
    return path


def compare(argv: Sequence[str]) -> int:
    args = _compare_parser().parse_args(argv)
    a = EvaluationResult.load(_per_user_path(args.run_a, args.split))
    b = EvaluationResult.load(_per_user_path(args.run_b, args.split))
    try:
        rows = compare_results(a, b, metrics=args.metrics)
    except ValueError as err:
        raise GraphrecError(str(err)) from err
    print(format_comparison_table(rows, Path(args.run_a).name, Path(args.run_b).name))
    return 0


def evaluate_run(argv: Sequence[str]) -> int:
    args = _eval_parser().parse_args(argv)
    setup_logging(args.quiet)
    from graphrec.evaluation import evaluate_scorer
    from graphrec.training import load_run

    config, data, model = load_run(args.run)
    result = evaluate_scorer(
        model.scorer(), data, split=args.split, ks=args.ks or config.eval.ks,
        mask_valid=args.mask_valid or (args.split == "test" and config.eval.mask_valid_at_test),
        metrics=config.eval.metrics, batch_size=args.batch_size or config.eval.batch_size,
    )
    if args.save:
        result.save(args.save)
    print(f"run: {args.run}  split: {args.split}  users: {result.num_users}  {result.seconds:.2f} s")
    print(format_metrics_table({config.model.name: result}))
    return 0


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        return compare(argv[1:])
    return evaluate_run(argv)
