"""``python -m graphrec COMMAND ...``: one entry point for graphrec's commands.

``recommend`` and ``serve`` use a trained run (:mod:`graphrec.inference`); ``train``
and ``evaluate`` (with its ``compare``/``experiment``/``search``/``report``/``pipeline``
subcommands) are forwarded to the existing ``graphrec-train`` / ``graphrec-evaluate``
commands unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from graphrec.cli import evaluate as evaluate_cli
from graphrec.cli import train as train_cli
from graphrec.inference.cli import recommend_main, serve_main

COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "recommend": recommend_main,
    "serve": serve_main,
    "train": train_cli.main,
    "evaluate": evaluate_cli.main,
    **{
        name: (lambda argv, name=name: evaluate_cli.main([name, *argv]))
        for name in ("compare", "experiment", "search", "report", "pipeline")
    },
}

USAGE = "usage: python -m graphrec {" + ",".join(COMMANDS) + "} ...\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE + "\n" + (__doc__ or ""), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(USAGE + f"error: unknown command {argv[0]!r}", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
