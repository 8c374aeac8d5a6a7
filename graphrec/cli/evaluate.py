"""``graphrec-evaluate`` / ``python evaluate.py``: evaluate saved runs and compare them.

* ``graphrec-evaluate RUN [--split test] [--mask-valid] [--ks 10 20 50]`` re-evaluates a
  run's best checkpoint without retraining.
* ``graphrec-evaluate compare RUN_A RUN_B [--split test]`` prints a table of metric
  means with paired Wilcoxon signed-rank and paired t-test p-values per metric, using the
  per-user vectors saved with each run.
* ``graphrec-evaluate experiment EXPERIMENT.yaml`` runs variants x seeds on one split and
  prints mean ± std with Holm-corrected paired tests against the baseline
  (:mod:`graphrec.experiment`); finished runs are reused.
* ``graphrec-evaluate search SEARCH.yaml`` runs or resumes a grid / random / TPE
  hyper-parameter search (needs optuna) and writes the best config.
* ``graphrec-evaluate report RUNS... --out report.html`` writes one self-contained HTML
  report with plots (needs matplotlib).
* ``graphrec-evaluate pipeline PIPELINE.yaml`` runs the end-to-end job: KG extraction
  and LLM augmentation stages, then an experiment whose variants use their outputs
  (:mod:`graphrec.pipeline`), and prints the comparison table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from graphrec.cli.common import (
    add_log_file,
    add_overrides,
    add_quiet,
    setup_logging,
    user_errors_exit,
)
from graphrec.errors import GraphrecError
from graphrec.evaluation import (
    EvaluationResult,
    compare_results,
    evaluate_scorer,
    format_comparison_table,
    format_metrics_table,
)
from graphrec.experiment import Experiment, load_experiment_config
from graphrec.experiment.search import load_search_config, run_search
from graphrec.optional import require
from graphrec.pipeline import load_pipeline_config, run_pipeline
from graphrec.reporting import write_report
from graphrec.reporting.browser import check_page, find_chromium
from graphrec.training.run import load_run
from graphrec.training.threads import configure_threads


def _eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrec-evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", help="run directory written by graphrec-train")
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument(
        "--mask-valid", action="store_true", help="also mask validation items when ranking for test"
    )
    parser.add_argument("--ks", type=int, nargs="+", help="cut-offs (default: the run's eval.ks)")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="users per scoring batch (default: the run's eval.batch_size)",
    )
    parser.add_argument(
        "--save", metavar="NPZ", help="also save the per-user vectors to this .npz file"
    )
    parser.add_argument("--quiet", "-q", action="store_true")
    return parser


def _compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrec-evaluate compare",
        description="Paired significance tests between two runs (B against A).",
    )
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
    config, data, model = load_run(args.run)
    configure_threads(config.train.num_threads)  # as training did: no oversubscription under load
    result = evaluate_scorer(
        model.scorer(),
        data,
        split=args.split,
        ks=args.ks or config.eval.ks,
        mask_valid=args.mask_valid or (args.split == "test" and config.eval.mask_valid_at_test),
        metrics=config.eval.metrics,
        batch_size=args.batch_size or config.eval.batch_size,
    )
    if args.save:
        result.save(args.save)
    print(
        f"run: {args.run}  split: {args.split}  users: {result.num_users}  {result.seconds:.2f} s"
    )
    print(format_metrics_table({config.model.name: result}))
    return 0


def _experiment_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrec-evaluate experiment",
        description="Run variants x seeds on one split (finished runs are reused) and print the comparison table.",
        epilog="Example: graphrec-evaluate experiment configs/experiments/ml-small-3x3.yaml --report report.html",
    )
    parser.add_argument("config", help="experiment YAML file (see graphrec/experiment/config.py)")
    add_overrides(parser, "run-config override for every variant, e.g. --set train.num_threads=1")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the experiment's seeds")
    parser.add_argument(
        "--out-dir", help="parent directory of experiments (default: the file's out_dir)"
    )
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="train only these variants")
    parser.add_argument(
        "--rerun",
        nargs="+",
        default=[],
        metavar="VARIANT",
        help="delete and retrain these variants' runs",
    )
    parser.add_argument(
        "--no-train", action="store_true", help="train nothing: tabulate the finished runs"
    )
    parser.add_argument(
        "--report", metavar="HTML", help="also write the HTML report of the experiment"
    )
    parser.add_argument(
        "--tensorboard", action="store_true", help="log epochs to <experiment>/tensorboard/"
    )
    add_quiet(parser)
    return parser


def experiment(argv: Sequence[str]) -> int:
    args = _experiment_parser().parse_args(argv)
    setup_logging(args.quiet)
    if args.report:
        require("matplotlib", "--report")
    exp_overrides = []
    if args.seeds:
        exp_overrides.append("seeds=[" + ",".join(str(s) for s in args.seeds) + "]")
    if args.out_dir:
        exp_overrides.append(f"out_dir={args.out_dir}")
    if args.tensorboard:
        exp_overrides.append("tensorboard=true")
    exp = Experiment.from_yaml(args.config, args.overrides, exp_overrides)
    add_log_file(exp.directory / "experiment.log")
    result = (
        exp.results()
        if args.no_train
        else exp.run(variants=args.only, rerun=args.rerun, quiet=args.quiet)
    )
    if args.no_train:
        result.save()
    print()
    first_variant = next(iter(exp.run_configs.values()))
    print(
        f"experiment: {exp.directory}  dataset: {first_variant[exp.config.seeds[0]].data.dataset}"
    )
    print(result.table())
    print()
    print(result.significance_table())
    if args.report:
        path = write_report([exp.directory], args.report)
        print(f"\nreport: {path}")
    return 0


def _search_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrec-evaluate search",
        description="Run or resume a hyper-parameter search (grid, random or Optuna TPE) selected on validation.",
        epilog="Example: graphrec-evaluate search configs/search/lightgcn-ml-small.yaml --n-trials 20",
    )
    parser.add_argument("config", help="search YAML file (see graphrec/experiment/search.py)")
    add_overrides(parser, "run-config override for every trial, e.g. --set train.num_threads=1")
    parser.add_argument(
        "--n-trials", type=int, help="total number of finished trials (over all calls)"
    )
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="stop starting trials after this long"
    )
    parser.add_argument(
        "--method", choices=("tpe", "random", "grid"), help="override the file's method"
    )
    parser.add_argument("--out-dir", help="parent directory of searches")
    add_quiet(parser)
    return parser


def search(argv: Sequence[str]) -> int:
    args = _search_parser().parse_args(argv)
    setup_logging(args.quiet)
    require("optuna", "hyper-parameter search")
    overrides = []
    if args.method:
        overrides.append(f"method={args.method}")
    if args.out_dir:
        overrides.append(f"out_dir={args.out_dir}")
    config = load_search_config(args.config, overrides)
    add_log_file(config.directory / "search.log")
    result = run_search(
        config, args.overrides, n_trials=args.n_trials, timeout_s=args.timeout, quiet=args.quiet
    )
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(result.counts().items()))
    print()
    print(f"search: {result.directory}  trials: {counts or 'none'}")
    print(result.table())
    if result.best_value is not None:
        print(
            f"\nbest valid {result.metric} = {result.best_value:.4f} (trial {result.best_trial}): {result.best_params}"
        )
        print(
            f"best config: {result.best_config_path}  (train it: python train.py --config {result.best_config_path})"
        )
    return 0


def _report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrec-evaluate report",
        description="Write one self-contained HTML report (tables and plots) of runs, experiments, "
        "searches and KG builds.",
        epilog="Example: graphrec-evaluate report runs/experiments/ml-small-3x3 --out report.html",
    )
    parser.add_argument(
        "runs",
        nargs="+",
        help="run directories, directories of runs, experiment, search or KG build directories",
    )
    parser.add_argument("--out", "-o", required=True, metavar="HTML", help="output file")
    parser.add_argument("--title", help="page title")
    parser.add_argument(
        "--baseline",
        help="group the others are tested against (default: the experiment's, else the first)",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        help="table columns (default: the experiment's, else recall/ndcg@ks)",
    )
    parser.add_argument(
        "--kg", nargs="+", default=[], metavar="DIR", help="KG build directories (stats.json)"
    )
    parser.add_argument(
        "--kg-eval",
        nargs="+",
        default=[],
        metavar="JSON",
        help="KG quality reports (kg evaluate --json)",
    )
    parser.add_argument(
        "--noise", nargs="+", default=[], metavar="JSON", help="noise-robustness tables"
    )
    parser.add_argument(
        "--no-analysis",
        action="store_true",
        help="skip the checkpoint-based sections (metric@K, long tail, sparse users)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="open the page in headless Chromium and fail on console errors or network requests",
    )
    parser.add_argument(
        "--screenshot", metavar="PNG", help="with --check: save a full-page screenshot"
    )
    parser.add_argument("--quiet", "-q", action="store_true")
    return parser


def report(argv: Sequence[str]) -> int:
    args = _report_parser().parse_args(argv)
    setup_logging(args.quiet)
    require("matplotlib", "the HTML report")
    path = write_report(
        args.runs,
        args.out,
        title=args.title,
        baseline=args.baseline,
        metrics=args.metrics,
        kg_dirs=args.kg,
        kg_eval=args.kg_eval,
        noise_files=args.noise,
        analysis=not args.no_analysis,
    )
    print(f"report: {path} ({path.stat().st_size / 1024:.0f} KB)")
    if args.check or args.screenshot:
        if find_chromium() is None:
            raise GraphrecError("--check needs Chromium (apt-get install chromium)")
        page = check_page(path, screenshot=args.screenshot)
        problems = page.errors + [f"network request: {u}" for u in page.external_requests]
        if page.images_broken:
            problems.append(f"{page.images_broken} of {page.images} images did not render")
        for line in problems:
            print(f"check: {line}", file=sys.stderr)
        print(
            f"check: {page.images} figures, {page.page_height} px tall, "
            f"{'no console errors, no network requests' if not problems else f'{len(problems)} problem(s)'}"
        )
        return 1 if problems else 0
    return 0


def _pipeline_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrec-evaluate pipeline",
        description="End to end: catalogue text -> KG (LLM) -> augmentation -> models (+ alignment) -> comparison "
        "table with significance. Finished stages and runs are reused; rerun to resume.",
        epilog="Example: graphrec-evaluate pipeline configs/pipeline/ml-latest-small-tmdb.yaml",
    )
    parser.add_argument("config", help="pipeline YAML file (see graphrec/pipeline/config.py)")
    add_overrides(parser, "run-config override for every variant, e.g. --set train.num_threads=1")
    parser.add_argument(
        "--pipeline-set",
        dest="pipeline_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pipeline-file override, e.g. --pipeline-set kg.backend=openai",
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="override the experiment's seeds")
    parser.add_argument(
        "--out-dir", help="parent directory of pipeline outputs (default: the file's out_dir)"
    )
    parser.add_argument(
        "--rerun",
        nargs="+",
        default=[],
        metavar="VARIANT",
        help="delete and retrain these variants' runs of the pipeline's experiment",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of every stage in a few minutes: first seed only, "
        f"{QUICK_EPOCHS} epochs per variant, outputs under OUT_DIR-quick (not a result)",
    )
    add_quiet(parser)
    return parser


#: Epochs per variant of `pipeline --quick` (enough to pass through training, evaluation and the report).
QUICK_EPOCHS = 2


def _quick_overrides(
    config_out_dir: Path, seeds: Sequence[int]
) -> tuple[list[str], list[str], list[str]]:
    """(pipeline, experiment, run) overrides that turn the main job into a smoke run."""
    pipeline_overrides = [f"out_dir={config_out_dir.parent / (config_out_dir.name + '-quick')}"]
    experiment_overrides = [f"seeds=[{seeds[0]}]"]
    run_overrides = [f"train.epochs={QUICK_EPOCHS}", "train.eval_every=1"]
    return pipeline_overrides, experiment_overrides, run_overrides


def pipeline(argv: Sequence[str]) -> int:
    args = _pipeline_parser().parse_args(argv)
    setup_logging(args.quiet)
    started = time.monotonic()
    pipeline_overrides = list(args.pipeline_overrides)
    if args.out_dir:
        pipeline_overrides.append(f"out_dir={args.out_dir}")
    config = load_pipeline_config(args.config, pipeline_overrides)
    experiment_overrides = []
    run_overrides = list(args.overrides)
    if args.seeds:
        experiment_overrides.append("seeds=[" + ",".join(str(s) for s in args.seeds) + "]")
    if args.quick:
        seeds = args.seeds or load_experiment_config(config.experiment_file).seeds
        quick_pipeline, quick_experiment, quick_run = _quick_overrides(
            config.directory.parent, seeds
        )
        config = load_pipeline_config(args.config, pipeline_overrides + quick_pipeline)
        experiment_overrides, run_overrides = quick_experiment, quick_run + run_overrides
    config.directory.mkdir(parents=True, exist_ok=True)
    add_log_file(config.directory / "pipeline.log")
    outcome = run_pipeline(
        config, run_overrides, experiment_overrides, quiet=args.quiet, rerun=args.rerun
    )
    print()
    print(f"pipeline: {config.directory}  {config.description}")
    if outcome.kg_export is not None:
        print(f"knowledge graph: {outcome.kg_export}")
    if outcome.augmentation_edges is not None:
        print(f"augmented edges: {outcome.augmentation_edges}")
    print(outcome.result.table())
    print()
    print(outcome.result.significance_table())
    print(f"\ntable: {outcome.experiment.directory / 'table.md'}")
    if outcome.report is not None:
        print(f"report: {outcome.report}")
    print(
        f"wall time: {time.monotonic() - started:.0f} s"
        + ("  (--quick: a smoke run, not a result)" if args.quick else "")
    )
    return 0


SUBCOMMANDS = {
    "compare": compare,
    "experiment": experiment,
    "search": search,
    "report": report,
    "pipeline": pipeline,
}


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    return evaluate_run(argv)
