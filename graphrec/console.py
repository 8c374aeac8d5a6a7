"""Process plumbing of every command: logging setup and turning graphrec errors into clean exits.

It sits below every command line (``graphrec.cli``, ``graphrec.augmentation.cli``,
``graphrec.inference.cli``, ``python -m graphrec.datasets``) so that none of them needs
another's package for it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from graphrec.errors import GraphrecError

EXIT_USER_ERROR = 2


def setup_logging(quiet: bool = False, log_file: str | Path | None = None) -> None:
    """Log INFO to stderr (WARNING with ``quiet``) and DEBUG to ``log_file`` when given."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING if quiet else logging.INFO)
    console.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root.addHandler(console)
    if log_file is not None:
        add_log_file(log_file)


def add_log_file(path: str | Path) -> logging.Handler:
    """Also log everything to ``path`` (appended); returns the handler so it can be removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


@contextlib.contextmanager
def logging_to(path: str | Path | None) -> Iterator[None]:
    """Log to ``path`` inside the block only (nothing when ``path`` is None)."""
    if path is None:
        yield
        return
    handler = add_log_file(path)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def user_errors_exit(main: Callable[..., int]) -> Callable[..., int]:
    """Print a :class:`GraphrecError` as one clear line and exit with status 2 (no traceback)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except GraphrecError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted: rerun the same command to resume", file=sys.stderr)
            return 130

    return wrapper
