"""What the argparse front ends share: process plumbing (from :mod:`graphrec.console`) and
the options several commands declare the same way (``--set``, ``--quiet``, a run directory)."""

from __future__ import annotations

import argparse

from graphrec.console import EXIT_USER_ERROR, add_log_file, setup_logging, user_errors_exit

__all__ = [
    "EXIT_USER_ERROR",
    "add_log_file",
    "add_overrides",
    "add_quiet",
    "setup_logging",
    "user_errors_exit",
]


def add_overrides(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set/-s KEY=VALUE`` (repeatable) into ``args.overrides``."""
    parser.add_argument(
        "--set",
        "-s",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help,
    )


def add_quiet(
    parser: argparse.ArgumentParser, help: str = "no progress bars, warnings only"
) -> None:
    """``--quiet/-q``."""
    parser.add_argument("--quiet", "-q", action="store_true", help=help)
