"""``graphrec-train`` / ``python train.py``: train a model from a YAML config."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from graphrec.cli.common import (
    add_overrides,
    add_quiet,
    setup_logging,
    user_errors_exit,
)
from graphrec.config import dump_config, load_config
from graphrec.evaluation import format_metrics_table
from graphrec.training.distributed import init_from_env
from graphrec.training.run import run_training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrec-train",
        description="Train a recommender, select the best epoch on validation, report test metrics.",
        epilog="Example: graphrec-train --config configs/ml-latest-small-tmdb/lightgcn.yaml --set train.epochs=50",
    )
    parser.add_argument(
        "--config",
        "-c",
        action="append",
        default=[],
        metavar="YAML",
        help="config file (repeatable; later files override earlier ones)",
    )
    add_overrides(
        parser, "override a config key, e.g. --set model.num_layers=2 (value parsed as YAML)"
    )
    parser.add_argument("--name", help="run name (shortcut for --set name=...)")
    parser.add_argument(
        "--out-dir", help="parent directory of runs (shortcut for --set out_dir=...)"
    )
    parser.add_argument("--seed", type=int, help="shortcut for --set train.seed=...")
    add_quiet(parser)
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    return parser


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = list(args.overrides)
    if args.name:
        overrides.append(f"name={args.name}")
    if args.out_dir:
        overrides.append(f"out_dir={args.out_dir}")
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    if args.quiet:
        overrides.append("train.progress=false")
    config = load_config(args.config, overrides)
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    context = init_from_env(config.train.device)  # no-op unless launched by torchrun
    setup_logging(args.quiet or not context.is_main)
    # the log file is opened under the run directory's lock (a refused run writes nothing there)
    result = run_training(
        config, log_file=config.run_dir / "train.log" if context.is_main else None
    )
    if not context.is_main:
        return 0
    rows = {}
    if result.valid is not None:
        rows[f"{config.model.name} valid"] = result.valid
    rows[f"{config.model.name} test"] = result.test
    columns = [
        f"{m}@{k}" for k in config.eval.ks for m in ("recall", "ndcg") if m in config.eval.metrics
    ]
    columns += [
        f"{m}@{max(config.eval.ks)}" for m in ("precision", "hitrate", "mrr", "map", "coverage")
    ]
    columns = [c for c in columns if c in result.test.metrics]
    print()
    print(
        f"run: {config.run_dir}  dataset: {config.data.dataset}  best epoch: {result.best_epoch}/{result.epochs_run}  "
        f"{result.seconds_per_epoch:.2f} s/epoch  {result.seconds_per_eval:.2f} s/eval"
    )
    print(format_metrics_table(rows, columns))
    return 0
