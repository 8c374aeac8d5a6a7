"""``graphrec COMMAND ...`` (also ``python -m graphrec``): every command of graphrec in one place.

Each command keeps its own parser and ``--help``; this module only picks the command.
``graphrec-train`` / ``python train.py`` and ``graphrec-evaluate`` / ``python evaluate.py``
(with its ``compare``/``experiment``/``search``/``report``/``pipeline`` subcommands),
``python -m graphrec.datasets``, ``python -m graphrec.augmentation`` and ``python -m kg``
remain the same commands under their old names.

All commands are imported up front: importing every one of them costs no measurable time
beyond torch and scipy, which ``train``/``evaluate`` need anyway (``python -X importtime``:
3.6-4.7 s for the whole table vs 4.1 s for ``graphrec.cli.evaluate`` alone on a loaded
2-core machine; the spread is noise).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from graphrec import datasets
from graphrec.augmentation import cli as augmentation_cli
from graphrec.cli import evaluate as evaluate_cli
from graphrec.cli import train as train_cli
from graphrec.inference.cli import recommend_main, serve_main
from kg import cli as kg_cli

Main = Callable[[list[str]], int]


def _evaluate_subcommand(name: str) -> Main:
    """``graphrec NAME ...`` = ``graphrec evaluate NAME ...`` (one error handling for both)."""

    def main(argv: list[str]) -> int:
        return evaluate_cli.main([name, *argv])

    return main


#: command -> (its main, one line for ``graphrec --help``)
COMMANDS: dict[str, tuple[Main, str]] = {
    "train": (train_cli.main, "train a model from a YAML config"),
    "evaluate": (
        evaluate_cli.main,
        "re-evaluate a finished run's best checkpoint",
    ),
    "compare": (_evaluate_subcommand("compare"), "paired significance tests between two runs"),
    "experiment": (
        _evaluate_subcommand("experiment"),
        "variants x seeds on one split, mean ± std and paired tests",
    ),
    "search": (_evaluate_subcommand("search"), "grid / random / TPE hyper-parameter search"),
    "report": (_evaluate_subcommand("report"), "one self-contained HTML report with plots"),
    "pipeline": (
        _evaluate_subcommand("pipeline"),
        "the end-to-end job: KG, augmentation, models, table",
    ),
    "recommend": (recommend_main, "top-K lists of a trained run, streamed to a file"),
    "serve": (serve_main, "serve a trained run over HTTP"),
    "datasets": (datasets.main, "list, describe or fetch datasets"),
    "kg": (kg_cli.main, "build and inspect knowledge graphs with LLMs"),
    "augment": (
        augmentation_cli.main,
        "LLM-proposed training triplets (an edge file)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: it only lists the commands (each command parses its own options)."""
    parser = argparse.ArgumentParser(
        prog="graphrec",
        description="Graph-centric, LLM-augmented recommendation.",
        epilog="`graphrec COMMAND --help` describes a command's options.  Older names of the same "
        "commands keep working: graphrec-train (python train.py), graphrec-evaluate (python "
        "evaluate.py), python -m graphrec.datasets, python -m graphrec.augmentation, python -m kg.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] in (["-h"], ["--help"]):
        parser.print_help()
        return 0
    if not argv or argv[0] not in COMMANDS:
        problem = f"unknown command {argv[0]!r}" if argv else "a command is required"
        print(f"{parser.format_usage()}graphrec: error: {problem}", file=sys.stderr)
        return 2
    command, _ = COMMANDS[argv[0]]
    return command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
